"""The self-service journey: quote, draft, submit, approve, reject, cancel, retry, lifecycle actions.

Every transition writes a RequestEvent and an audit event in the caller's unit of work,
and queues its side effects (provisioning, cloud actions, notifications) as work items in
that same transaction: nothing reaches the cloud before the decision is committed.

The public face of the servicerequests package: reading (:mod:`~cloudmgr.servicerequests.reading`),
the form and the quote (:mod:`~cloudmgr.servicerequests.quoting`), the classified rule
(:mod:`~cloudmgr.servicerequests.placement`), drafting and submitting
(:mod:`~cloudmgr.servicerequests.submission`), the approval chain
(:mod:`~cloudmgr.servicerequests.approvals`) and the later life of requests and servers
(:mod:`~cloudmgr.servicerequests.lifecycle`) live in their own modules; the web, the CLI, the jobs
and other packages import them from here.
"""

from __future__ import annotations

from cloudmgr.servicerequests.approvals import approve_request, may_approve_any, may_decide, reject_request
from cloudmgr.servicerequests.bulk import MAX_BULK, BulkOutcome, RowRefused, decide_many
from cloudmgr.servicerequests.consoles import (
    DEFAULT_LOG_LINES,
    MAX_LOG_LINES,
    ConsoleTarget,
    ConsoleUnavailable,
    console_target,
    may_open_console,
    may_read_console_log,
    open_console,
    read_console_log,
)
from cloudmgr.servicerequests.deletion import VOLUME_CHOICES, DeletionPreview, VolumeChoice, deletion_preview
from cloudmgr.servicerequests.lifecycle import (
    CANCELLABLE,
    NOT_BOOTED,
    SERVER_ACTIONS,
    cancel_request,
    extend_expiry,
    may_act_on_server,
    may_cancel,
    may_resize,
    may_retry,
    request_resize,
    retry_server,
    server_action,
)
from cloudmgr.servicerequests.ordering import OrderCatalog, order_catalog
from cloudmgr.servicerequests.orphan_lists import (
    MAX_BULK_ORPHANS,
    OrphanBulkOutcome,
    OrphanFilter,
    OrphanRefused,
    act_on_orphans,
    orphan_resources_page,
    orphan_servers_page,
)
from cloudmgr.servicerequests.orphans import (
    ORPHAN_ACTIONS,
    OrphanKind,
    OrphanNotFound,
    OrphanResolution,
    OrphanResource,
    list_orphan_resources,
    may_act_on_orphans,
    request_orphan_action,
)
from cloudmgr.servicerequests.overview import DepartmentOverview, department_overview
from cloudmgr.servicerequests.placement import check_request_placeable
from cloudmgr.servicerequests.quoting import (
    MAX_COUNT,
    MAX_DISK_GB,
    MAX_DISKS_PER_VM,
    MAX_EXPIRY_DAYS,
    NAME_PREFIX,
    USER_DATA_MAX_BYTES,
    DataDisk,
    Quote,
    RequestForm,
    approval_steps,
    firewall_needs,
    quote,
)
from cloudmgr.servicerequests.reading import (
    PageVersion,
    RequestFilter,
    awaiting,
    awaiting_page,
    count_awaiting,
    department_filter,
    get_request,
    get_server,
    list_orphans,
    list_requests,
    list_servers,
    request_page_version,
    requests_by_ids,
    servers_page,
)
from cloudmgr.servicerequests.submission import (
    create_request,
    draft_form,
    may_edit,
    may_submit,
    submit_request,
    update_draft,
)

__all__ = [
    "CANCELLABLE",
    "DEFAULT_LOG_LINES",
    "MAX_BULK",
    "MAX_BULK_ORPHANS",
    "MAX_COUNT",
    "MAX_DISKS_PER_VM",
    "MAX_DISK_GB",
    "MAX_EXPIRY_DAYS",
    "MAX_LOG_LINES",
    "NAME_PREFIX",
    "NOT_BOOTED",
    "ORPHAN_ACTIONS",
    "SERVER_ACTIONS",
    "USER_DATA_MAX_BYTES",
    "VOLUME_CHOICES",
    "BulkOutcome",
    "ConsoleTarget",
    "ConsoleUnavailable",
    "DataDisk",
    "DeletionPreview",
    "DepartmentOverview",
    "OrderCatalog",
    "OrphanBulkOutcome",
    "OrphanFilter",
    "OrphanKind",
    "OrphanNotFound",
    "OrphanRefused",
    "OrphanResolution",
    "OrphanResource",
    "PageVersion",
    "Quote",
    "RequestFilter",
    "RequestForm",
    "RowRefused",
    "VolumeChoice",
    "act_on_orphans",
    "approval_steps",
    "approve_request",
    "awaiting",
    "awaiting_page",
    "cancel_request",
    "check_request_placeable",
    "console_target",
    "count_awaiting",
    "create_request",
    "decide_many",
    "deletion_preview",
    "department_filter",
    "department_overview",
    "draft_form",
    "extend_expiry",
    "firewall_needs",
    "get_request",
    "get_server",
    "list_orphan_resources",
    "list_orphans",
    "list_requests",
    "list_servers",
    "may_act_on_orphans",
    "may_act_on_server",
    "may_approve_any",
    "may_cancel",
    "may_decide",
    "may_edit",
    "may_open_console",
    "may_read_console_log",
    "may_resize",
    "may_retry",
    "may_submit",
    "open_console",
    "order_catalog",
    "orphan_resources_page",
    "orphan_servers_page",
    "quote",
    "read_console_log",
    "reject_request",
    "request_orphan_action",
    "request_page_version",
    "request_resize",
    "requests_by_ids",
    "retry_server",
    "server_action",
    "servers_page",
    "submit_request",
    "update_draft",
]
