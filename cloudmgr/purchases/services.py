"""Purchase requests: drafting, submission with automatic findings, finance's decision,
withdrawal, and turning a blocked purchase's cloud offer into a VM request draft.

Every transition writes a PurchaseEvent and an audit event in the caller's unit of work
before anything else; reading a cloud's free capacity for the findings is a read only.

The public face of the purchases package: the rules (:mod:`~cloudmgr.purchases.rules`), the typed form
(:mod:`~cloudmgr.purchases.forms`), reading (:mod:`~cloudmgr.purchases.reading`), the findings
(:mod:`~cloudmgr.purchases.findings`) and the transitions (:mod:`~cloudmgr.purchases.lifecycle`) live in
their own modules; the web, the CLI and the jobs import them from here.
"""

from __future__ import annotations

from cloudmgr.purchases.findings import (
    FindingContext,
    compute_findings,
    context_for,
    live_findings_pending,
    needs_of,
    queue_live_findings,
)
from cloudmgr.purchases.forms import ItemInput, PurchaseForm, items_total, validate_form
from cloudmgr.purchases.lifecycle import (
    add_attachment,
    create_purchase,
    decide_purchase,
    make_vm_draft,
    submit_purchase,
    update_purchase,
    withdraw_purchase,
)
from cloudmgr.purchases.reading import (
    QUEUE_SORTS,
    PurchaseFilter,
    count_review_queue,
    get_purchase,
    list_purchases,
    review_queue,
    review_queue_page,
)
from cloudmgr.purchases.rules import (
    CENT,
    DECISIONS,
    DUPLICATE_WINDOW_DAYS,
    HARDWARE,
    MAX_AMOUNT,
    MAX_ATTACHMENT_BYTES,
    MAX_DISK_GB,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_RAM_GB,
    MAX_VCPUS,
    PURCHASE_MACHINE,
    REASON_MAX,
    SHA256,
    TEXT_MAX,
    TITLE_MAX,
    WEIGHTS,
    finding_evidence_for,
    may_change,
    may_decide,
    may_edit,
    may_read_other_departments_findings,
    may_review_purchases,
)

__all__ = [
    "CENT",
    "DECISIONS",
    "DUPLICATE_WINDOW_DAYS",
    "HARDWARE",
    "MAX_AMOUNT",
    "MAX_ATTACHMENT_BYTES",
    "MAX_DISK_GB",
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "MAX_RAM_GB",
    "MAX_VCPUS",
    "PURCHASE_MACHINE",
    "QUEUE_SORTS",
    "REASON_MAX",
    "SHA256",
    "TEXT_MAX",
    "TITLE_MAX",
    "WEIGHTS",
    "FindingContext",
    "ItemInput",
    "PurchaseFilter",
    "PurchaseForm",
    "add_attachment",
    "compute_findings",
    "context_for",
    "count_review_queue",
    "create_purchase",
    "decide_purchase",
    "finding_evidence_for",
    "get_purchase",
    "items_total",
    "list_purchases",
    "live_findings_pending",
    "make_vm_draft",
    "may_change",
    "may_decide",
    "may_edit",
    "may_read_other_departments_findings",
    "may_review_purchases",
    "needs_of",
    "queue_live_findings",
    "review_queue",
    "review_queue_page",
    "submit_purchase",
    "update_purchase",
    "validate_form",
    "withdraw_purchase",
]
