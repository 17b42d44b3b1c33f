"""The forms of self-service requests, servers, quotas and the catalog.

Field rules mirror the services' (``cloudmgr.servicerequests.services``) so that people get
a message next to the field; the services check again and have the last word.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    Field,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from cloudmgr.firewall.errors import RuleInvalid
from cloudmgr.firewall.services import MAX_RULES, RuleSpec, parse_rule_lines
from cloudmgr.inventory import services as inventory
from cloudmgr.organisation.actor import Actor
from cloudmgr.servicerequests.services import (
    MAX_COUNT,
    MAX_DISK_GB,
    MAX_EXPIRY_DAYS,
    NAME_PREFIX,
    USER_DATA_MAX_BYTES,
    DataDisk,
    RequestForm,
)
from web.common.display import rule_problem_text
from web.common.forms import (
    DATE_MESSAGE,
    PRICE_MESSAGE,
    LocalisedDateField,
    LocalisedDecimalField,
    LocalisedIntegerField,
    SafeForm,
)

REASON_MAX = 2000
JUSTIFICATION_MAX = 4000
QUOTA_LIMIT_MAX = 1_000_000
PRICE_MAX = Decimal("10000000")


class _Range:
    """NumberRange that stays quiet when the value did not parse (the parse error says it)."""

    def __init__(self, minimum: Any, maximum: Any, message: Any) -> None:
        self.minimum, self.maximum, self.message = minimum, maximum, message

    def __call__(self, form: Any, field: Field) -> None:
        value = field.data
        if value is None:
            return
        try:
            inside = bool(self.minimum <= value <= self.maximum)
        except ArithmeticError:  # Decimal("NaN") refuses to be compared
            inside = False
        if not inside:
            raise ValidationError(str(self.message) % {"min": self.minimum, "max": self.maximum})


def _optional_id(value: Any) -> int | None:
    """A select's optional id: "" (none chosen) is None; anything else must be a positive 32-bit id."""
    if value in (None, ""):
        return None
    number = int(value)
    if not 0 < number <= 2147483647:
        raise ValueError("not an id")
    return number


def _future_date(max_days: int) -> Any:
    def check(form: Any, field: Field) -> None:
        value = field.data
        if value is None:
            return
        today = date.today()
        if value <= today:
            raise ValidationError(str(_l("Choose a date after today.")))
        if value > today + timedelta(days=max_days):
            raise ValidationError(str(_l("Choose a date within %(years)d years.", years=max_days // 365)))

    return check


class NewRequestForm(SafeForm):
    """A request for VMs on one cloud (the cloud comes from the page's ``?cloud=``)."""

    zone = RadioField(_l("Network zone"), choices=[], validators=[InputRequired(message=_l("Choose a network zone."))])
    flavor = RadioField(
        _l("Flavor"), choices=[], coerce=int, validators=[InputRequired(message=_l("Choose a flavor."))]
    )
    image = SelectField(_l("Image"), choices=[], coerce=int, validators=[InputRequired(message=_l("Choose an image."))])
    count = LocalisedIntegerField(
        _l("Number of servers"),
        default=1,
        validators=[
            InputRequired(message=_l("Enter how many servers you need.")),
            _Range(1, MAX_COUNT, _l("Between %(min)d and %(max)d servers.")),
        ],
        render_kw={"min": 1, "max": MAX_COUNT, "inputmode": "numeric"},
    )
    name_prefix = StringField(
        _l("Name prefix"),
        validators=[
            DataRequired(message=_l("Enter a name prefix.")),
            Regexp(
                NAME_PREFIX.pattern,
                message=_l("2 to 31 lower-case letters, digits or “-”, starting with a letter."),
            ),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none", "maxlength": 31},
    )
    application_system = StringField(
        _l("Application system"),
        validators=[Optional(), Length(max=128, message=_l("At most %(max)d characters."))],
        render_kw={"maxlength": 128},
    )
    legacy_system = SelectField(
        _l("Legacy system it replaces"), choices=[], coerce=_optional_id, validate_choice=False, validators=[Optional()]
    )
    justification = TextAreaField(
        _l("Justification"),
        validators=[
            DataRequired(message=_l("Say what the servers are for.")),
            Length(max=JUSTIFICATION_MAX, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"rows": 4, "maxlength": JUSTIFICATION_MAX},
    )
    expires_on = LocalisedDateField(
        _l("Expiry date"),
        validators=[InputRequired(message=DATE_MESSAGE), _future_date(MAX_EXPIRY_DAYS)],
    )
    # What makes the servers usable (issue 16); the service checks them all again.
    ssh_key = SelectField(
        _l("SSH key"), choices=[], coerce=_optional_id, validate_choice=False, validators=[Optional()]
    )
    user_data = TextAreaField(
        _l("User data (cloud-init)"),
        validators=[
            Optional(),
            Length(max=USER_DATA_MAX_BYTES, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"rows": 4, "spellcheck": "false", "autocapitalize": "none"},
    )
    disk1_size = LocalisedIntegerField(
        _l("Data disk 1 (GB)"),
        validators=[Optional(), _Range(1, MAX_DISK_GB, _l("A data disk is %(min)d to %(max)d GB."))],
        render_kw={"min": 1, "max": MAX_DISK_GB, "inputmode": "numeric"},
    )
    disk1_type = SelectField(_l("Volume type of disk 1"), choices=[], coerce=_optional_id, validate_choice=False)
    disk2_size = LocalisedIntegerField(
        _l("Data disk 2 (GB)"),
        validators=[Optional(), _Range(1, MAX_DISK_GB, _l("A data disk is %(min)d to %(max)d GB."))],
        render_kw={"min": 1, "max": MAX_DISK_GB, "inputmode": "numeric"},
    )
    disk2_type = SelectField(_l("Volume type of disk 2"), choices=[], coerce=_optional_id, validate_choice=False)
    public_address = BooleanField(_l("A public address for each server (internet zone only)"))
    # The firewall (issue 16): the operators' templates as checkboxes and rules of one's own, one a
    # line; the service resolves them on the zone (and refuses what the zone does not allow).
    firewall_template_ids = SelectMultipleField(
        _l("Firewall templates"),
        choices=[],
        coerce=int,
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    firewall_rules = TextAreaField(
        _l("Firewall rules of your own, one a line"),
        validators=[Optional(), Length(max=MAX_RULES * 80, message=_l("At most %(max)d characters."))],
        render_kw={"rows": 4, "spellcheck": "false", "autocomplete": "off", "autocapitalize": "none"},
    )
    preview = SubmitField(_l("Preview"))
    save_draft = SubmitField(_l("Save draft"))
    submit = SubmitField(_l("Submit"))

    def data_disks(self) -> tuple[DataDisk, ...]:
        """The disk rows with a size (a row left empty is no disk)."""
        rows = ((self.disk1_size.data, self.disk1_type.data), (self.disk2_size.data, self.disk2_type.data))
        return tuple(DataDisk(size, volume_type_item_id=type_id) for size, type_id in rows if size is not None)

    def validate_firewall_rules(self, field: Field) -> None:
        try:
            parse_rule_lines(field.data or "", "firewall_rules")
        except RuleInvalid as exc:
            raise ValidationError(rule_problem_text(exc)) from None

    def fill_from(self, wanted: RequestForm) -> None:
        """Show a saved draft (``servicerequests.draft_form``) in the form, to change it."""
        self.zone.data = wanted.zone
        self.flavor.data = wanted.flavor_item_id
        self.image.data = wanted.image_item_id
        self.count.data = wanted.count
        self.name_prefix.data = wanted.name_prefix
        self.justification.data = wanted.justification
        self.expires_on.data = wanted.expires_on
        self.application_system.data = wanted.application_system or ""
        self.legacy_system.data = wanted.legacy_system_id
        self.ssh_key.data = wanted.ssh_key_id
        self.user_data.data = wanted.user_data or ""
        rows = ((self.disk1_size, self.disk1_type), (self.disk2_size, self.disk2_type))
        for (size, volume_type), disk in zip(rows, wanted.data_disks, strict=False):
            size.data, volume_type.data = disk.size_gb, disk.volume_type_item_id
        self.public_address.data = wanted.public_address
        self.firewall_template_ids.data = [t for t in wanted.firewall_templates if isinstance(t, int)]
        self.firewall_rules.data = "\n".join(rule.as_line() for rule in wanted.firewall_rules)

    def own_firewall_rules(self) -> tuple[RuleSpec, ...]:
        """The rules typed (checked by validate_firewall_rules; RuleInvalid if called unchecked)."""
        return tuple(parse_rule_lines(self.firewall_rules.data or "", "firewall_rules"))

    def request_form(self, cloud_key: str) -> RequestForm:
        return RequestForm(
            cloud_key=cloud_key,
            zone=self.zone.data,
            flavor_item_id=self.flavor.data,
            image_item_id=self.image.data,
            count=self.count.data,
            name_prefix=self.name_prefix.data.strip(),
            justification=self.justification.data.strip(),
            expires_on=self.expires_on.data,
            application_system=(self.application_system.data or "").strip() or None,
            legacy_system_id=self.legacy_system.data or None,
            ssh_key_id=self.ssh_key.data or None,
            user_data=self.user_data.data or None,
            data_disks=self.data_disks(),
            public_address=bool(self.public_address.data),
            firewall_templates=tuple(self.firewall_template_ids.data or ()),
            firewall_rules=self.own_firewall_rules(),
        )


class DecisionForm(SafeForm):
    """Approve or reject an approval step; a rejection needs a reason."""

    # No Optional(): it would stop the chain before validate_reason sees an empty rejection.
    reason = TextAreaField(
        _l("Reason"),
        validators=[Length(max=REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"rows": 2, "maxlength": REASON_MAX},
    )
    approve = SubmitField(_l("Approve"))
    reject = SubmitField(_l("Reject"))

    def validate_reason(self, field: Field) -> None:
        if self.reject.data and not (field.data or "").strip():
            raise ValidationError(str(_l("Give a reason for the rejection.")))


class CancelForm(SafeForm):
    reason = StringField(
        _l("Why cancel?"),
        validators=[Optional(), Length(max=REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"maxlength": REASON_MAX},
    )
    cancel = SubmitField(_l("Cancel the request"))


class ButtonForm(SafeForm):
    """Only the CSRF token: a button that does one thing (submit a draft, retry, stop, start)."""


class DeleteServerForm(SafeForm):
    confirm = StringField(
        _l("Type the server's name to confirm"),
        validators=[DataRequired(message=_l("Type the server's name.")), Length(max=64)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    # Required when the server has data volumes; the service says so (the field named).
    volumes = RadioField(
        _l("What becomes of its data volumes"),
        choices=[
            SelectChoice("keep", _l("Keep them: detached, they stay your department's and count in its quota")),
            SelectChoice("delete", _l("Delete them with the server")),
        ],
        validators=[Optional()],
    )
    delete = SubmitField(_l("Delete the server"))


class ExtendForm(SafeForm):
    expires_on = LocalisedDateField(
        _l("New expiry date"),
        validators=[InputRequired(message=DATE_MESSAGE), _future_date(MAX_EXPIRY_DAYS)],
    )
    extend = SubmitField(_l("Extend"))


class ResizeForm(SafeForm):
    flavor = SelectField(
        _l("New flavor"), choices=[], coerce=int, validators=[InputRequired(message=_l("Choose a flavor."))]
    )
    justification = TextAreaField(
        _l("Justification"),
        validators=[
            DataRequired(message=_l("Say why the server needs another size.")),
            Length(max=JUSTIFICATION_MAX, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"rows": 3, "maxlength": JUSTIFICATION_MAX},
    )
    resize = SubmitField(_l("Request the resize"))


def _limit_field(label: Any) -> LocalisedIntegerField:
    return LocalisedIntegerField(
        label,
        validators=[
            Optional(),
            _Range(0, QUOTA_LIMIT_MAX, _l("Between %(min)d and %(max)d.")),
        ],
        render_kw={"min": 0, "max": QUOTA_LIMIT_MAX, "inputmode": "numeric"},
    )


class QuotaChangeForm(SafeForm):
    """A department asks for other limits on one cloud: a size, or explicit limits."""

    cloud = SelectField(_l("Cloud"), choices=[], validators=[InputRequired(message=_l("Choose a cloud."))])
    size = SelectField(_l("Size"), choices=[], default="", validate_choice=True)
    cores = _limit_field(_l("vCPU cores"))
    ram_gb = _limit_field(_l("Memory (GB)"))
    instances = _limit_field(_l("Server count"))
    networks = _limit_field(_l("Networks"))
    floating_ips = _limit_field(_l("Floating IPs"))
    reason = TextAreaField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Say why your department needs more.")),
            Length(max=REASON_MAX, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"rows": 3, "maxlength": REASON_MAX},
    )
    ask = SubmitField(_l("Ask for the change"))

    LIMIT_FIELDS = ("cores", "ram_gb", "instances", "networks", "floating_ips")

    def explicit_limits(self) -> dict[str, int]:
        return {name: getattr(self, name).data for name in self.LIMIT_FIELDS if getattr(self, name).data is not None}

    def validate_size(self, field: Field) -> None:
        has_limits = bool(self.explicit_limits())
        if field.data and has_limits:
            raise ValidationError(str(_l("Choose a size or enter limits, not both.")))
        if not field.data and not has_limits:
            raise ValidationError(str(_l("Choose a size or enter at least one limit.")))


class QuotaDecisionForm(SafeForm):
    reason = StringField(
        _l("Reason"),
        validators=[Length(max=REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"maxlength": REASON_MAX},
    )
    approve = SubmitField(_l("Approve"))
    reject = SubmitField(_l("Reject"))

    def validate_reason(self, field: Field) -> None:
        if self.reject.data and not (field.data or "").strip():
            raise ValidationError(str(_l("Give a reason for the rejection.")))


class OfferForm(SafeForm):
    """How one catalog item is offered."""

    offered = BooleanField(_l("Offered"))
    name_zh = StringField(
        _l("Chinese name"),
        validators=[
            DataRequired(message=_l("Enter the Chinese name.")),
            Length(max=128, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"maxlength": 128},
    )
    name_en = StringField(
        _l("English name"),
        validators=[
            DataRequired(message=_l("Enter the English name.")),
            Length(max=128, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"maxlength": 128},
    )
    monthly_price = LocalisedDecimalField(
        _l("Monthly price (yuan)"),
        places=2,
        validators=[
            InputRequired(message=PRICE_MESSAGE),
            _Range(Decimal(0), PRICE_MAX, _l("Between 0 and 10,000,000 yuan.")),
        ],
        render_kw={"inputmode": "decimal"},
    )
    save = SubmitField(_l("Save"))


def legacy_system_choices(session: Session, actor: Actor) -> list[SelectChoice]:
    """The choices of the request form's "legacy system" select: the department's systems."""
    choices = [SelectChoice("", _("(none)"))]
    if actor.department_id is None:
        return choices
    for system in inventory.department_system_choices(session, actor.department_id):
        label = f"{system.hostname} · {system.application_system}"
        if system.classified:
            marker = _("Classified")  # outside the f-string, where pybabel extracts it
            label += f" ({marker})"
        choices.append(SelectChoice(system.id, label))
    return choices
