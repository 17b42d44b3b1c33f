"""The programme file (``etc/programme.yaml``, ``CLOUDMGR_PROGRAMME_FILE``): the deadlines.

start: 2017-01-01
deadlines:
  cloud: {date: 2018-12-31, label_zh: …, label_en: …}   # in-scope systems on the cloud
  rooms: {date: 2020-12-31, label_zh: …, label_en: …}   # server rooms consolidated
at_risk_days: 90          # not yet in a wave this close to its deadline: at risk
reminder_every_days: 7    # departments behind schedule are reminded this often
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from cloudmgr.programme.errors import ProgrammeFileInvalid


@dataclass(frozen=True)
class Deadline:
    date: date
    label_zh: str
    label_en: str

    def label(self, locale: str) -> str:
        return self.label_en if locale == "en" else self.label_zh


@dataclass(frozen=True)
class ProgrammeConfig:
    start: date
    cloud: Deadline
    rooms: Deadline
    at_risk_days: int = 90
    reminder_every_days: int = 7


def _deadline(path: Path, name: str, raw: Any, problems: list[str]) -> Deadline | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("date"), date):
        problems.append(f"{path}: deadlines.{name} needs a date (YYYY-MM-DD)")
        return None
    return Deadline(raw["date"], str(raw.get("label_zh") or ""), str(raw.get("label_en") or ""))


def _positive(path: Path, data: dict[str, Any], name: str, default: int, problems: list[str]) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:
        problems.append(f"{path}: {name} must be a whole number of days between 1 and 3650, not {value!r}")
        return default
    return value


def read_programme_file(path: Path) -> ProgrammeConfig:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProgrammeFileInvalid(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("deadlines"), dict):
        raise ProgrammeFileInvalid(f"{path}: expected 'deadlines' with 'cloud' and 'rooms'")
    problems: list[str] = []
    cloud = _deadline(path, "cloud", data["deadlines"].get("cloud"), problems)
    rooms = _deadline(path, "rooms", data["deadlines"].get("rooms"), problems)
    start = data.get("start")
    if not isinstance(start, date):
        problems.append(f"{path}: start needs a date (YYYY-MM-DD)")
    at_risk = _positive(path, data, "at_risk_days", 90, problems)
    every = _positive(path, data, "reminder_every_days", 7, problems)
    if problems or cloud is None or rooms is None or not isinstance(start, date):
        raise ProgrammeFileInvalid("\n".join(problems))
    if start >= cloud.date:
        raise ProgrammeFileInvalid(f"{path}: start ({start}) must come before the cloud deadline ({cloud.date})")
    return ProgrammeConfig(start, cloud, rooms, at_risk, every)
