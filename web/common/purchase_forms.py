"""Forms, labels and display helpers of purchase requests (portal and finance pages)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms import Form as PlainForm
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from cloudmgr.purchases import services as purchases
from cloudmgr.purchases.models import BlockBasis, Category, FindingKind, PurchaseFinding, PurchaseState
from cloudmgr.purchases.services import ItemInput, PurchaseForm
from web.common.forms import LocalisedDecimalField, LocalisedIntegerField, SafeForm

ITEM_ROWS = 3  # the empty rows a new purchase starts with
MORE_ROWS = 3  # the rows "more item rows" adds (the page's script adds one at a time)
REASON_MAX = purchases.REASON_MAX

CATEGORY_LABELS = {
    Category.SERVER: _l("Server hardware"),
    Category.STORAGE: _l("Storage"),
    Category.NETWORK: _l("Network devices"),
    Category.SERVER_ROOM: _l("Server room build or renovation"),
    Category.SOFTWARE: _l("Software licences"),
    Category.OTHER: _l("Other"),
}
STATE_LABELS = {
    PurchaseState.DRAFT: _l("Draft"),
    PurchaseState.SUBMITTED: _l("Submitted"),
    PurchaseState.RETURNED: _l("Returned for information"),
    PurchaseState.RESUBMITTED: _l("Resubmitted"),
    PurchaseState.APPROVED: _l("Approved"),
    PurchaseState.BLOCKED: _l("Blocked"),
    PurchaseState.WITHDRAWN: _l("Withdrawn"),
}
STATE_CLASSES: dict[str, str] = {
    PurchaseState.DRAFT: "state state-off",
    PurchaseState.SUBMITTED: "state state-pending",
    PurchaseState.RESUBMITTED: "state state-pending",
    PurchaseState.RETURNED: "state state-warn",
    PurchaseState.APPROVED: "state state-ok",
    PurchaseState.BLOCKED: "state state-bad",
    PurchaseState.WITHDRAWN: "state state-off",
}
FINDING_LABELS = {
    FindingKind.CLOUD_PROVIDES: _l("The cloud provides it"),
    FindingKind.NO_CLOUD_OFFER: _l("No cloud offer fits now"),
    FindingKind.SERVER_ROOM: _l("No new server rooms"),
    FindingKind.DUPLICATE: _l("Possible duplicate"),
    FindingKind.MIGRATING: _l("Already migrating"),
    FindingKind.CLASSIFIED: _l("Classified system (legitimate exception)"),
}
BASIS_LABELS = {
    BlockBasis.CLOUD_PROVIDES: _l("The cloud provides it"),
    BlockBasis.SERVER_ROOM: _l("No new server rooms"),
    BlockBasis.DUPLICATE: _l("Duplicate"),
    BlockBasis.MIGRATING: _l("Already migrating"),
    BlockBasis.OTHER: _l("Other reason"),
}
EVENT_LABELS = {
    "create": _l("created"),
    "edit": _l("edited"),
    "submit": _l("submitted"),
    "resubmit": _l("resubmitted"),
    "approve": _l("approved"),
    "block": _l("blocked"),
    "return": _l("returned for information"),
    "withdraw": _l("withdrawn"),
    "vm_draft": _l("VM request draft made"),
}
SEVERITY_CLASSES = {"block": "state state-bad", "warn": "state state-warn", "info": "state state-off"}


def _label(table: dict[Any, Any], code: object) -> str:
    value = table.get(str(code))
    return str(value) if value is not None else str(code or "")


def init_app(app: Flask) -> None:
    app.add_template_filter(lambda c: _label(CATEGORY_LABELS, c), "label_purchase_category")
    app.add_template_filter(lambda c: _label(STATE_LABELS, c), "label_purchase_state")
    app.add_template_filter(lambda c: _label(STATE_CLASSES, c) or "state", "purchase_state_class")
    app.add_template_filter(lambda c: _label(FINDING_LABELS, c), "label_finding")
    app.add_template_filter(lambda c: _label(BASIS_LABELS, c), "label_block_basis")
    app.add_template_filter(lambda c: _label(EVENT_LABELS, c), "label_purchase_event")
    app.add_template_filter(lambda c: SEVERITY_CLASSES.get(str(c), "state"), "severity_class")


def finding_text(finding: PurchaseFinding, *, for_department: bool) -> str:
    return str(_finding_text(finding, for_department=for_department))


def _finding_text(finding: PurchaseFinding, *, for_department: bool) -> object:
    """The finding in the reader's language; a department never sees another department's purchase."""
    ev = finding.evidence or {}
    kind = finding.kind
    if kind == FindingKind.CLOUD_PROVIDES:
        return _(
            "%(flavor)s × %(count)d on %(cloud)s (%(zone)s): ¥%(monthly)s a month instead of buying for ¥%(amount)s.",
            flavor=ev.get("flavor"),
            count=ev.get("count", 0),
            cloud=ev.get("cloud"),
            zone=ev.get("zone"),
            monthly=ev.get("monthly_cost"),
            amount=ev.get("purchase_amount"),
        )
    if kind == FindingKind.NO_CLOUD_OFFER:
        return _("No flavor × count on the department's clouds fits both its quota and the free capacity now.")
    if kind == FindingKind.SERVER_ROOM:
        return _("Departments at every level build no new server rooms or data centres.")
    if kind == FindingKind.DUPLICATE:
        matches = ev.get("matches", [])
        if for_department:
            own = [m for m in matches if m.get("same_department")]
            others = len(matches) - len(own)
            return _(
                "Similar to %(own)d of your department's requests and %(others)d of other departments.",
                own=len(own),
                others=others,
            )
        return _("Similar items in %(count)d recent request(s).", count=len(matches))
    if kind == FindingKind.MIGRATING:
        return _("The application system is already on the cloud, requested there, or in the migration programme.")
    if kind == FindingKind.CLASSIFIED:
        return _("A classified system on the e-government intranet: hardware may be bought for it.")
    return finding.summary


# --- forms ----------------------------------------------------------------------------------


class ItemRowForm(PlainForm):  # type: ignore[misc]
    description = StringField(_l("Description"), validators=[Length(max=255)])
    vcpus = LocalisedIntegerField(_l("vCPU"), validators=[Optional()], default=0)
    ram_gb = LocalisedIntegerField(_l("RAM (GB)"), validators=[Optional()], default=0)
    disk_gb = LocalisedIntegerField(_l("Disk (GB)"), validators=[Optional()], default=0)
    quantity = LocalisedIntegerField(_l("Quantity"), validators=[Optional()], default=1)
    unit_price = LocalisedDecimalField(_l("Unit price (yuan)"), validators=[Optional()], places=2)

    def validate_description(self, field: Any) -> None:
        filled = any(
            getattr(self, name).data not in (None, "", 0) for name in ("vcpus", "ram_gb", "disk_gb", "unit_price")
        )
        if filled and not (field.data or "").strip():
            raise ValidationError(str(_l("Describe the item.")))

    def validate_unit_price(self, field: Any) -> None:
        if (self.description.data or "").strip() and field.data is None:
            raise ValidationError(str(_l("Enter a price in yuan, e.g. 120 or 120.50.")))
        if field.data is not None and (field.data < 0 or field.data > purchases.MAX_AMOUNT):
            raise ValidationError(str(_l("Enter a price in yuan, e.g. 120 or 120.50.")))

    def validate_quantity(self, field: Any) -> None:
        if (self.description.data or "").strip() and not (
            field.data is not None and 1 <= field.data <= purchases.MAX_QUANTITY
        ):
            raise ValidationError(str(_l("Between 1 and %(max)d.", max=purchases.MAX_QUANTITY)))

    def _spec(self, field: Any, maximum: int) -> None:
        if field.data is not None and not 0 <= field.data <= maximum:
            raise ValidationError(str(_l("Between 0 and %(max)d.", max=maximum)))

    def validate_vcpus(self, field: Any) -> None:
        self._spec(field, purchases.MAX_VCPUS)

    def validate_ram_gb(self, field: Any) -> None:
        self._spec(field, purchases.MAX_RAM_GB)

    def validate_disk_gb(self, field: Any) -> None:
        self._spec(field, purchases.MAX_DISK_GB)


class PurchaseEditForm(SafeForm):
    title = StringField(
        _l("Title"),
        validators=[DataRequired(message=_l("Enter a title.")), Length(max=purchases.TITLE_MAX)],
        render_kw={"maxlength": purchases.TITLE_MAX},
    )
    category = SelectField(
        _l("Category"),
        choices=[SelectChoice(c.value, label) for c, label in CATEGORY_LABELS.items()],
        validators=[InputRequired(message=_l("Choose a category."))],
    )
    application_system = StringField(
        _l("Application system"),
        validators=[DataRequired(message=_l("Name the application system.")), Length(max=128)],
        render_kw={"maxlength": 128},
    )
    legacy_hostname = StringField(
        _l("Legacy host (optional)"),
        validators=[Optional(), Length(max=128), Regexp(r"^[A-Za-z0-9.\-_]+$", message=_l("A host name."))],
        render_kw={"maxlength": 128, "autocomplete": "off"},
    )
    classified = BooleanField(_l("Classified system (e-government intranet)"))
    justification = TextAreaField(
        _l("Justification"),
        validators=[DataRequired(message=_l("Say why the purchase is needed.")), Length(max=purchases.TEXT_MAX)],
        render_kw={"rows": 4, "maxlength": purchases.TEXT_MAX},
    )
    lines = FieldList(FormField(ItemRowForm), min_entries=ITEM_ROWS, max_entries=purchases.MAX_ITEMS)
    add_rows = SubmitField(_l("More item rows"))
    save = SubmitField(_l("Save draft"))
    submit = SubmitField(_l("Submit to finance"))

    # --- the item rows: any number up to MAX_ITEMS, added and dropped without the script too ---
    def add_rows_asked(self) -> bool:
        """The "more item rows" button: the page comes back with empty rows added, nothing saved."""
        if not self.add_rows.data:
            return False
        for _row in range(min(MORE_ROWS, purchases.MAX_ITEMS - len(self.lines))):
            self.lines.append_entry()
        return True

    def drop_row_asked(self, asked: str | None) -> bool:
        """A row's "drop" button (``drop_row=<its index>``): the page comes back without that
        row, nothing saved; the last row stays (emptied)."""
        if asked is None:
            return False
        entry = next((e for e in self.lines.entries if e.name == f"{self.lines.name}-{asked}"), None)
        if entry is not None and len(self.lines.entries) > 1:
            self.lines.entries.remove(entry)
        elif entry is not None:
            for name in ("description", "vcpus", "ram_gb", "disk_gb", "quantity", "unit_price"):
                entry.form[name].data = None
        return True

    def items(self) -> list[ItemInput]:
        """The rows with a description, as the service takes them."""
        return [
            ItemInput(
                description=row.form.description.data.strip(),
                quantity=row.form.quantity.data or 0,
                unit_price=Decimal(row.form.unit_price.data or 0),
                vcpus=row.form.vcpus.data or 0,
                ram_gb=row.form.ram_gb.data or 0,
                disk_gb=row.form.disk_gb.data or 0,
            )
            for row in self.lines
            if (row.form.description.data or "").strip()
        ]

    def total(self) -> Decimal:
        """The total the page shows, computed by the service's rule from the rows as typed."""
        return purchases.items_total(self.items())

    def validate_lines(self, field: Any) -> None:
        if not any((row.form.description.data or "").strip() for row in field):
            raise ValidationError(str(_l("Add at least one item.")))

    def purchase_form(self) -> PurchaseForm:
        return PurchaseForm(
            title=self.title.data or "",
            category=self.category.data or "",
            amount_yuan=None,  # the service computes it: the sum of the items
            application_system=self.application_system.data or "",
            justification=self.justification.data or "",
            items=self.items(),
            legacy_hostname=self.legacy_hostname.data or None,
            classified=bool(self.classified.data),
        )


class AttachmentForm(SafeForm):
    file_name = StringField(
        _l("File name"), validators=[DataRequired(message=_l("Enter the file name.")), Length(max=255)]
    )
    size_bytes = LocalisedIntegerField(
        _l("Size (bytes)"), validators=[InputRequired(message=_l("Enter the size in bytes."))]
    )
    sha256 = StringField(
        _l("SHA-256"),
        validators=[
            DataRequired(message=_l("Enter the file's SHA-256.")),
            Regexp(r"^[0-9a-fA-F]{64}$", message=_l("64 hexadecimal characters.")),
        ],
    )
    attach = SubmitField(_l("Add attachment"))

    def validate_size_bytes(self, field: Any) -> None:
        if field.data is not None and not 0 < field.data <= purchases.MAX_ATTACHMENT_BYTES:
            raise ValidationError(str(_l("Between 1 byte and 10 GB.")))


class WithdrawForm(SafeForm):
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=REASON_MAX)])
    withdraw = SubmitField(_l("Withdraw"))


class PurchaseDecisionForm(SafeForm):
    decision = RadioField(
        _l("Decision"),
        choices=[
            SelectChoice("approve", _l("Approve")),
            SelectChoice("block", _l("Block")),
            SelectChoice("return", _l("Return for information")),
        ],
        validators=[InputRequired(message=_l("Choose a decision."))],
    )
    basis = SelectField(
        _l("Blocked because"),
        choices=[SelectChoice(b.value, label) for b, label in BASIS_LABELS.items()],
        validators=[Optional()],
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[Length(max=REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"rows": 3, "maxlength": REASON_MAX},
    )
    decide = SubmitField(_l("Record the decision"))

    def validate_reason(self, field: Any) -> None:
        if self.decision.data in {"block", "return"} and not (field.data or "").strip():
            raise ValidationError(str(_l("A reason is required to block or return.")))
