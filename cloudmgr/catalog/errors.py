from __future__ import annotations

from cloudmgr.errors import NotFound, ValidationFailed


class CatalogItemNotFound(NotFound):
    code = "catalog_item_not_found"


class RatesFileInvalid(ValidationFailed):
    code = "rates_file_invalid"


class CatalogItemInvalid(ValidationFailed):
    code = "catalog_item_invalid"
