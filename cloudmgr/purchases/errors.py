from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"


class PurchaseInvalid(ValidationFailed):
    code = "purchase_invalid"


class PurchaseTransitionInvalid(Conflict):
    code = "purchase_invalid_transition"


class PurchaseForbidden(PermissionDenied):
    code = "purchase_forbidden"


class NoCloudOffer(Conflict):
    code = "no_cloud_offer"
