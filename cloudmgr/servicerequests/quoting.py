"""What a new request must be (the typed form and its checks) and what it would cost: the quote and
the approval chain a cost implies."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.errors import TemplateNotFound
from cloudmgr.firewall.services import FirewallPlan, RuleSpec
from cloudmgr.keys.errors import KeyNotFound
from cloudmgr.keys.services import KeyChoice, key_for_request
from cloudmgr.messages import N_, Message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, NetworkZone, ZoneKind
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import NoQuota
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import ChoiceProblem, FieldProblem, RequestInvalid
from cloudmgr.servicerequests.placement import check_legacy_system

NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
# Servers in one request: a department moving a system or a wave asks for many at once (the
# province-scale issue asks one request for 100); the quota still bounds what it may take.
MAX_COUNT = 100
MAX_EXPIRY_DAYS = 3 * 365
MAX_DISK_GB = 2048
MAX_DISKS_PER_VM = 4
USER_DATA_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class DataDisk:
    """One data disk each VM of the request gets."""

    size_gb: int
    # The type's catalog item (the portal's choice) or, without it, the cloud's name for the
    # type (the API's): either way it must be offered on the request's cloud.
    volume_type_item_id: int | None = None
    volume_type_name: str | None = None


@dataclass(frozen=True)
class RequestForm:
    cloud_key: str
    zone: str
    flavor_item_id: int
    image_item_id: int
    count: int
    name_prefix: str
    justification: str
    expires_on: date
    application_system: str | None = None
    # The legacy system the VMs replace (issue 6); a classified one is refused and audited.
    legacy_system_id: int | None = None
    # What makes a VM usable (issue 16): the SSH key put on it, cloud-init user data, its
    # data disks and a public (floating) address.
    ssh_key_id: int | None = None
    user_data: str | None = None
    data_disks: tuple[DataDisk, ...] = ()
    public_address: bool = False
    # The firewall (issue 16): operators' templates, each by id or by name (the API takes
    # either), and rules of the department's own.  Neither: MEMBERS_ONLY_RULES (see
    # :func:`firewall_choice`).
    firewall_templates: tuple[int | str, ...] = ()
    firewall_rules: tuple[RuleSpec, ...] = ()


@dataclass(frozen=True)
class FirewallChoice:
    """The firewall a request asks for, as it is stored (template ids and own rules), and the
    plan it resolves to on the request's zone."""

    template_ids: tuple[int, ...]
    rules: tuple[RuleSpec, ...]
    plan: FirewallPlan


@dataclass(frozen=True)
class ChosenDisk:
    size_gb: int
    volume_type: CatalogItem

    def as_stored(self) -> dict[str, int | str]:
        """As ServiceRequest.data_disks keeps it."""
        volume_type = self.volume_type
        return {"size_gb": self.size_gb, "volume_type": volume_type.cloud_name, "volume_type_item_id": volume_type.id}


@dataclass(frozen=True)
class ValidRequest:
    """A form that passed :func:`validated`, with what it refers to."""

    cloud: Cloud
    flavor: CatalogItem
    image: CatalogItem
    disks: tuple[ChosenDisk, ...]
    key: KeyChoice | None
    # The cloud's public-address item when the form asks for an address.
    address: CatalogItem | None
    firewall: FirewallChoice

    def cost_lines(self, count: int) -> tuple[CostLine, ...]:
        """What the request costs per month, line by line: the flavor, each data disk (GB x the
        type's price per GB-month) and the public address, each for all ``count`` VMs."""
        lines = [CostLine(CostKind.FLAVOR, self.flavor, 1, self.flavor.monthly_price * count)]
        lines += [
            CostLine(CostKind.DISK, d.volume_type, d.size_gb, d.volume_type.monthly_price * d.size_gb * count)
            for d in self.disks
        ]
        if self.address is not None:
            lines.append(CostLine(CostKind.ADDRESS, self.address, 1, self.address.monthly_price * count))
        return tuple(lines)

    def monthly_cost(self, count: int) -> Decimal:
        return sum((line.monthly for line in self.cost_lines(count)), Decimal("0")).quantize(Decimal("0.01"))


class CostKind(enum.StrEnum):
    FLAVOR = "flavor"
    DISK = "disk"
    ADDRESS = "address"


@dataclass(frozen=True)
class CostLine:
    kind: CostKind
    item: CatalogItem
    # Per VM: the disk's GB, else 1.
    quantity: int
    # For all the request's VMs, per month.
    monthly: Decimal


@dataclass(frozen=True)
class Quote:
    monthly_cost: Decimal
    needs: dict[Resource, int]
    free: dict[Resource, int]
    limits: dict[Resource, int]
    fits: bool
    approval_steps: list[str]
    cost_lines: tuple[CostLine, ...] = ()
    # Why the firewall needs an operator's approval (empty: it does not).
    firewall_reasons: tuple[str, ...] = ()


def server_needs(vcpus: int, ram_mb: int, disk_sizes_gb: Sequence[int], public_address: bool) -> dict[Resource, int]:
    """What one server of a request holds in the ledger: the quote (x count) and the reservation at
    submission (per server) both use it, so they never differ.  Disks and addresses appear only
    when asked for: a cloud without block storage has no ledger row for them."""
    needs = {Resource.CORES: vcpus, Resource.RAM_MB: ram_mb, Resource.INSTANCES: 1}
    if disk_sizes_gb:
        needs[Resource.VOLUMES] = len(disk_sizes_gb)
        needs[Resource.GIGABYTES] = sum(disk_sizes_gb)
    if public_address:
        needs[Resource.FLOATING_IPS] = 1
    return needs


def firewall_needs(plan: FirewallPlan) -> dict[Resource, int]:
    """What a request's firewall holds in the ledger: its own security group and the rules in it
    (the open egress provisioning adds included).  Once per request, not per server: all its
    servers share the group, so the first server's reservation carries it (see
    :func:`cloudmgr.servicerequests.transitions.reserve_servers`).  The department's members
    group is not counted: one per project, shared by all its requests, made once and counted by
    the ledger's sync with the cloud.  Two requests with the same rules share a group on the
    cloud (it is named by its rules); each still reserves it, erring on the side of refusing.
    A plan with no rules (a request from before firewalls) boots in the project's default group
    and needs nothing.  Nor does the members-only default of a request that chose no rules: like
    the department's group it is one group per project, shared by all such requests, so
    reserving it per request would refuse a department its eleventh waiting request."""
    if not plan.rules or plan.members_only:
        return {}
    return {Resource.SECURITY_GROUPS: 1, Resource.SECURITY_GROUP_RULES: plan.cloud_rule_count}


def _needs(valid: ValidRequest, count: int) -> dict[Resource, int]:
    one = server_needs(
        valid.flavor.vcpus, valid.flavor.ram_mb, [d.size_gb for d in valid.disks], valid.address is not None
    )
    needs = {resource: n * count for resource, n in one.items()}
    for resource, n in firewall_needs(valid.firewall.plan).items():
        needs[resource] = needs.get(resource, 0) + n
    return needs


def approval_steps(cloud: Cloud, monthly_cost: Decimal, firewall_reasons: Sequence[str] = ()) -> list[str]:
    """The approval chain of a request: the cloud's policy, finance above its threshold, and
    an operator when the firewall says one must approve (``firewall_reasons`` not empty, see
    :func:`cloudmgr.firewall.services.needs_operator_approval`).  The quote and the submission
    both ask this, so the chain a quote shows is the one the request gets."""
    policy = cloud.approval_policy or {}
    steps = list(policy.get("steps") or ["dept_head", "operator"])
    threshold = policy.get("finance_above_yuan")
    if threshold is not None and monthly_cost > Decimal(str(threshold)) and "finance" not in steps:
        steps.append("finance")
    return firewall.with_operator_step(steps, firewall_reasons)


def firewall_choice(session: Session, department: Department, form: RequestForm) -> FirewallChoice:
    """The firewall ``form`` asks for, resolved on its zone.  No template and no rule: the
    members-only rules (the department's servers reach the request's servers, nothing else
    does), so servers are never left in the project's "default" group.  Raises
    :class:`RequestInvalid` for an unknown template, and the firewall's own refusals
    (:class:`~cloudmgr.firewall.errors.WorldOpenOnClosedZone`,
    :class:`~cloudmgr.firewall.errors.AdminNetworkUnset`) as they are."""
    try:
        ids = firewall.template_ids(session, form.firewall_templates, "firewall_template_ids")
    except TemplateNotFound as exc:
        problem = FieldProblem("firewall_template_ids", ChoiceProblem.FIREWALL_TEMPLATE)
        raise RequestInvalid(f"{problem.message} ({exc.message})", (problem,)) from None
    rules = tuple(form.firewall_rules)
    plan = firewall.resolve_rules(session, department, form.zone, ids, rules)
    return FirewallChoice(tuple(ids), rules, plan)


def _offered(session: Session, item_id: int, cloud: Cloud, kind: ItemKind) -> CatalogItem | None:
    item = session.get(CatalogItem, item_id)
    if item is None or item.cloud_id != cloud.id or item.kind != kind.value or not item.offered or not item.available:
        return None
    return item


def _offered_volume_type(session: Session, cloud: Cloud, disk: DataDisk) -> CatalogItem | None:
    if disk.volume_type_item_id is not None:
        return _offered(session, disk.volume_type_item_id, cloud, ItemKind.VOLUME_TYPE)
    if not disk.volume_type_name:
        return None
    return session.scalar(
        select(CatalogItem).where(
            CatalogItem.cloud_id == cloud.id,
            CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
            CatalogItem.cloud_name == disk.volume_type_name,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
    )


def _chosen_disks(
    session: Session, cloud: Cloud, disks: Sequence[DataDisk], problems: list[FieldProblem]
) -> tuple[ChosenDisk, ...]:
    if len(disks) > MAX_DISKS_PER_VM:
        problems.append(FieldProblem("data_disks", ChoiceProblem.TOO_MANY_DISKS, {"max_disks": MAX_DISKS_PER_VM}))
    chosen = []
    for number, disk in enumerate(disks, start=1):
        size = disk.size_gb
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DISK_GB:
            field = f"data_disks[{number}].size_gb"
            params: dict[str, str | int] = {"number": number, "max_gb": MAX_DISK_GB}
            problems.append(FieldProblem(field, ChoiceProblem.DISK_SIZE, params))
            continue
        volume_type = _offered_volume_type(session, cloud, disk)
        if volume_type is None:
            field = f"data_disks[{number}].volume_type"
            problems.append(FieldProblem(field, ChoiceProblem.DISK_TYPE, {"number": number}))
            continue
        chosen.append(ChosenDisk(size, volume_type))
    return tuple(chosen)


def _user_data_problem(user_data: str | None) -> FieldProblem | None:
    if not user_data:
        return None
    if "\x00" in user_data:
        return FieldProblem("user_data", ChoiceProblem.USER_DATA_NUL)
    if len(user_data.encode("utf-8")) > USER_DATA_MAX_BYTES:
        return FieldProblem("user_data", ChoiceProblem.USER_DATA_TOO_LONG, {"max_kib": USER_DATA_MAX_BYTES // 1024})
    return None


def _chosen_key(session: Session, actor: Actor, key_id: int | None, problems: list[FieldProblem]) -> KeyChoice | None:
    if key_id is None:
        return None
    try:
        return key_for_request(session, actor, key_id)
    except KeyNotFound:
        # Another user's key, or one added in another department: not found, like a missing one.
        problems.append(FieldProblem("ssh_key_id", ChoiceProblem.SSH_KEY_NOT_FOUND))
        return None


def _chosen_address(
    session: Session, cloud: Cloud, zone: str, wanted: bool, problems: list[FieldProblem]
) -> CatalogItem | None:
    if not wanted:
        return None
    if zone != ZoneKind.INTERNET.value:
        problems.append(FieldProblem("public_address", ChoiceProblem.ADDRESS_ZONE, {"zone": zone}))
        return None
    item = session.scalar(
        select(CatalogItem).where(
            CatalogItem.cloud_id == cloud.id,
            CatalogItem.kind == ItemKind.FLOATING_IP.value,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
    )
    if item is None:
        problems.append(FieldProblem("public_address", ChoiceProblem.ADDRESS_NOT_OFFERED))
    return item


def validated(session: Session, actor: Actor, form: RequestForm, today: date) -> ValidRequest:
    if actor.department_id is None:
        raise RequestInvalid("only department users request VMs")
    problems = []
    cloud = session.scalar(select(Cloud).where(Cloud.key == form.cloud_key))
    link = None
    if cloud is not None:
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == actor.department_id, DepartmentCloud.cloud_id == cloud.id
            )
        )
    if cloud is None or link is None or not cloud.enabled:
        raise RequestInvalid(
            Message(N_("your department may not use cloud %(cloud)s"), {"cloud": repr(form.cloud_key)})
        )
    zone = session.scalar(select(NetworkZone).where(NetworkZone.cloud_id == cloud.id, NetworkZone.zone == form.zone))
    if zone is None:
        problems.append(f"cloud {cloud.key} has no {form.zone!r} zone")
    flavor = session.get(CatalogItem, form.flavor_item_id)
    if flavor is None or flavor.cloud_id != cloud.id or flavor.kind != ItemKind.FLAVOR.value or not flavor.offered:
        problems.append("choose a flavor offered on this cloud")
    image = session.get(CatalogItem, form.image_item_id)
    if image is None or image.cloud_id != cloud.id or image.kind != ItemKind.IMAGE.value or not image.offered:
        problems.append("choose an image offered on this cloud")
    if not 1 <= form.count <= MAX_COUNT:
        problems.append(f"count must be between 1 and {MAX_COUNT}")
    if not NAME_PREFIX.match(form.name_prefix or ""):
        problems.append("name prefix: 2-31 lower-case letters, digits or '-', starting with a letter")
    if not (form.justification or "").strip():
        problems.append("a justification is required")
    elif len(form.justification) > 4000:
        problems.append("the justification is too long (at most 4000 characters)")
    if form.application_system and len(form.application_system) > 128:
        problems.append("the application system name is too long (at most 128 characters)")
    if form.expires_on <= today:
        problems.append("the expiry date must be in the future")
    elif form.expires_on > today + timedelta(days=MAX_EXPIRY_DAYS):
        problems.append(f"the expiry date must be within {MAX_EXPIRY_DAYS // 365} years")
    choices: list[FieldProblem] = []
    disks = _chosen_disks(session, cloud, form.data_disks, choices)
    user_data_problem = _user_data_problem(form.user_data)
    if user_data_problem is not None:
        choices.append(user_data_problem)
    key = _chosen_key(session, actor, form.ssh_key_id, choices)
    address = _chosen_address(session, cloud, form.zone, form.public_address, choices)
    if problems or choices:
        message = "; ".join([*problems, *(p.message for p in choices)])
        raise RequestInvalid(message, tuple(choices), other_problems="; ".join(problems))
    assert flavor is not None and image is not None
    department = session.get(Department, actor.department_id)
    assert department is not None
    return ValidRequest(cloud, flavor, image, disks, key, address, firewall_choice(session, department, form))


def quote(
    session: Session, actor: Actor, form: RequestForm, *, today: date | None = None, entry_point: str = "quote"
) -> Quote:
    """What a request would cost per month, what it needs, and what quota is left (before submitting).

    The legacy system is checked exactly as :func:`create_request` checks it: another
    department's is not found (404) and a classified one is refused (409
    ``classified_system``, audited under ``entry_point``, e.g. "portal.quote"): a quote never
    says "fits" for a request that would be refused."""
    valid = validated(session, actor, form, today or date.today())
    cloud = valid.cloud
    check_legacy_system(session, actor, form.legacy_system_id, entry_point)
    assert actor.department_id is not None
    needs = _needs(valid, form.count)
    try:
        balance = ledger.balance(session, actor.department_id, cloud.id)
        free = {r: b.free for r, b in balance.resources.items()}
        limits = {r: b.limit for r, b in balance.resources.items()}
    except NoQuota:
        free = {r: 0 for r in needs}
        limits = dict(free)
    cost = valid.monthly_cost(form.count)
    fits = all(needs[r] <= free.get(r, 0) for r in needs)
    steps = approval_steps(cloud, cost, valid.firewall.plan.approval_reasons)
    return Quote(
        cost, needs, free, limits, fits, steps, valid.cost_lines(form.count), valid.firewall.plan.approval_reasons
    )
