from __future__ import annotations

from cloudmgr.errors import ValidationFailed


class CapacityFileInvalid(ValidationFailed):
    code = "capacity_file_invalid"


class CapacityCsvInvalid(ValidationFailed):
    code = "capacity_csv_invalid"
