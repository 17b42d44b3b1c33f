"""What the department portal and the operators' pages for dedicated lines (专线, issue 19) share: the
lines' words in the reader's language, the forms, the register's filters and paging.

The rules (the target by rule, the classified rule, the import's checks) are the domain's
(:mod:`cloudmgr.lines.services`); here they are only shown and asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from cloudmgr.lines import services as lines
from cloudmgr.lines.models import Carrier, LineState, LineTarget, LineType
from web.common.forms import LocalisedDateField, LocalisedDecimalField, LocalisedIntegerField, SafeForm
from web.common.labels import PLACE_LABELS

if TYPE_CHECKING:
    from cloudmgr.lines.models import NetworkLine

PER_PAGE = 25
MAX_PAGE = 100_000

CARRIER_NAMES: Mapping[Carrier, object] = {
    Carrier.TELECOM: _l("China Telecom"),
    Carrier.UNICOM: _l("China Unicom"),
    Carrier.MOBILE: _l("China Mobile"),
    Carrier.BROADNET: _l("China Broadnet"),
    Carrier.OTHER: _l("Other carrier"),
}
LINE_TYPE_NAMES: Mapping[LineType, object] = {
    LineType.MSTP: _l("MSTP"),
    LineType.SDH: _l("SDH"),
    LineType.MPLS_VPN: _l("MPLS VPN"),
    LineType.LEASED_FIBRE: _l("Leased fibre"),
    LineType.INTERNET: _l("Internet line"),
}
TARGET_NAMES: Mapping[LineTarget, object] = {
    LineTarget.INTRANET: _l("E-government intranet"),
    LineTarget.EXTRANET: _l("E-government extranet"),
    LineTarget.INTERNET: _l("Internet"),
    LineTarget.RETIRE: _l("Retire"),
}
TARGET_REASONS: Mapping[LineTarget, object] = {
    LineTarget.INTRANET: _l("It carries classified business: the e-government intranet, never the extranet."),
    LineTarget.EXTRANET: _l("It carries non-classified business: the e-government extranet."),
    LineTarget.INTERNET: _l("It serves the public: the internet."),
    LineTarget.RETIRE: _l("Every system it carries is on the cloud and its server rooms are closed: retire it."),
}
STATE_NAMES: Mapping[LineState, object] = {
    LineState.IN_SERVICE: _l("In service"),
    LineState.PLANNED: _l("Cut-over planned"),
    LineState.CUT_OVER: _l("Cut over onto its target"),
    LineState.RETIRED: _l("Line retired"),
}
STATE_CLASSES: Mapping[LineState, str] = {
    LineState.IN_SERVICE: "state state-off",
    LineState.PLANNED: "state state-pending",
    LineState.CUT_OVER: "state state-ok",
    LineState.RETIRED: "state state-ok",
}
# The 11 cities of cloudmgr.lines.coverage.CITIES by their names in the organisation files.
CITY_KEYS: Mapping[str, str] = {
    "石家庄市": "shijiazhuang",
    "唐山市": "tangshan",
    "秦皇岛市": "qinhuangdao",
    "邯郸市": "handan",
    "邢台市": "xingtai",
    "保定市": "baoding",
    "张家口市": "zhangjiakou",
    "承德市": "chengde",
    "沧州市": "cangzhou",
    "廊坊市": "langfang",
    "衡水市": "hengshui",
}


def city_name(city: str) -> str:
    """One of the 11 cities in the reader's language; another place as the register holds it."""
    key = CITY_KEYS.get(city)
    return city if key is None else str(PLACE_LABELS[key])


@dataclass(frozen=True)
class LineWords:
    """The lines' words for the templates (``words.carrier(line.carrier)`` …)."""

    def carrier(self, code: Carrier | str) -> str:
        return str(CARRIER_NAMES.get(Carrier(code), code))

    def line_type(self, code: LineType | str) -> str:
        return str(LINE_TYPE_NAMES.get(LineType(code), code))

    def target(self, code: LineTarget | str | None) -> str:
        return "" if code is None else str(TARGET_NAMES.get(LineTarget(code), code))

    def target_reason(self, code: LineTarget | str) -> str:
        return str(TARGET_REASONS[LineTarget(code)])

    def state(self, code: LineState | str) -> str:
        return str(STATE_NAMES.get(LineState(code), code))

    def state_class(self, code: LineState | str) -> str:
        return STATE_CLASSES.get(LineState(code), "state state-off")

    def city(self, city: str) -> str:
        return city_name(city)

    def place(self, city: str, county: str = "", township: str = "") -> str:
        return " · ".join(part for part in (city_name(city), county, township) if part)

    def rule(self, line: NetworkLine) -> lines.TargetDecision:
        return lines.proposed_target(line)

    def classified(self, line: NetworkLine) -> bool:
        return lines.carries_classified(line)

    def breaks_rule(self, line: NetworkLine) -> bool:
        return lines.breaks_classified_rule(line)


WORDS = LineWords()


def _choices(names: Mapping[Any, object]) -> list[SelectChoice]:
    return [SelectChoice(code.value, label) for code, label in names.items()]


def city_choices(blank: object | None = None) -> list[SelectChoice]:
    first = [SelectChoice("", blank)] if blank is not None else []
    return first + [SelectChoice(city, PLACE_LABELS[CITY_KEYS[city]]) for city in lines.CITIES]


# --- the register's filters --------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterQuery:
    """The register's filters and page as the query string gave them (nonsense is ignored)."""

    flt: lines.LineFilter
    page: int
    args: dict[str, str]  # for the pager's and the export's links


def _choice_arg(name: str, enum_type: type[Any]) -> Any:
    raw = request.args.get(name) or ""
    try:
        return enum_type(raw) if raw else None
    except ValueError:
        return None


def _text_arg(name: str, limit: int = 64) -> str | None:
    raw = (request.args.get(name) or "").strip()
    return raw[:limit] or None


def register_query(*, department_ids: Mapping[str, int] | None = None) -> RegisterQuery:
    """The filters of ``?carrier=&type=&state=&target=&city=&county=&q=&department=&page=``; the
    department filter only where ``department_ids`` (key → id) is given (the operators' register)."""
    department_key = _text_arg("department") if department_ids is not None else None
    department_id = department_ids.get(department_key) if department_ids and department_key else None
    flt = lines.LineFilter(
        department_id=department_id,
        target=_choice_arg("target", LineTarget),
        carrier=_choice_arg("carrier", Carrier),
        line_type=_choice_arg("type", LineType),
        state=_choice_arg("state", LineState),
        city=_text_arg("city"),
        county=_text_arg("county"),
        search=_text_arg("q"),
    )
    args = {
        "carrier": flt.carrier.value if flt.carrier else "",
        "type": flt.line_type.value if flt.line_type else "",
        "state": flt.state.value if flt.state else "",
        "target": flt.target.value if flt.target else "",
        "city": flt.city or "",
        "county": flt.county or "",
        "q": flt.search or "",
        "department": department_key if department_id is not None and department_key else "",
    }
    page = min(max(request.args.get("page", type=int) or 1, 1), MAX_PAGE)
    return RegisterQuery(flt, page, {k: v for k, v in args.items() if v})


def page_of(rows: list[Any], page: int) -> tuple[list[Any], int]:
    """The rows of ``page`` and the number of pages."""
    pages = max((len(rows) + PER_PAGE - 1) // PER_PAGE, 1)
    start = (min(page, pages) - 1) * PER_PAGE
    return rows[start : start + PER_PAGE], pages


def filter_options() -> dict[str, list[SelectChoice]]:
    return {
        "carrier": _choices(CARRIER_NAMES),
        "type": _choices(LINE_TYPE_NAMES),
        "state": _choices(STATE_NAMES),
        "target": _choices(TARGET_NAMES),
    }


# --- forms ---------------------------------------------------------------------------------------

REQUIRED = _l("This field is required.")


class LineForm(SafeForm):
    """One line declared by hand, field by field as the import's columns."""

    code = StringField(
        _l("Line number"),
        validators=[
            DataRequired(REQUIRED),
            Length(max=64),
            Regexp(
                r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$",
                message=_l("Use letters, digits and . _ - / only, starting with a letter or a digit."),
            ),
        ],
        description=_l("The carrier's circuit number, or your department's own number for the line."),
    )
    carrier = SelectField(_l("Carrier"), choices=_choices(CARRIER_NAMES), validators=[InputRequired(REQUIRED)])
    line_type = SelectField(_l("Line type"), choices=_choices(LINE_TYPE_NAMES), validators=[InputRequired(REQUIRED)])
    bandwidth_mbps = LocalisedIntegerField(
        _l("Bandwidth (Mbit/s)"), validators=[InputRequired(REQUIRED), NumberRange(min=1, max=400_000)]
    )
    a_site = StringField(_l("End A: site"), validators=[DataRequired(REQUIRED), Length(max=128)])
    a_city = SelectField(_l("End A: city"), validators=[InputRequired(REQUIRED)])
    a_county = StringField(_l("End A: county or district"), validators=[Optional(), Length(max=64)])
    a_township = StringField(_l("End A: township"), validators=[Optional(), Length(max=64)])
    b_site = StringField(_l("End B: site"), validators=[DataRequired(REQUIRED), Length(max=128)])
    b_city = SelectField(_l("End B: city"), validators=[InputRequired(REQUIRED)])
    b_county = StringField(_l("End B: county or district"), validators=[Optional(), Length(max=64)])
    b_township = StringField(_l("End B: township"), validators=[Optional(), Length(max=64)])
    monthly_rent = LocalisedDecimalField(
        _l("Monthly rent (yuan)"), places=2, validators=[InputRequired(REQUIRED), NumberRange(min=0)]
    )
    contract_start = LocalisedDateField(_l("Contract starts"), validators=[InputRequired(REQUIRED)])
    contract_end = LocalisedDateField(_l("Contract ends"), validators=[InputRequired(REQUIRED)])
    systems = SelectMultipleField(_l("Legacy systems it carries"), choices=[], validate_choice=True)
    server_rooms = SelectMultipleField(_l("Server rooms it links"), choices=[], validate_choice=True)
    classified = BooleanField(_l("It carries classified business"))
    public_facing = BooleanField(_l("It serves the public"))
    submit = SubmitField(_l("Declare the line"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        start, end = self.contract_start.data, self.contract_end.data
        if start is not None and end is not None and end < start:
            self.contract_end.errors.append(_("The contract ends before it starts."))
            ok = False
        return ok

    def fill_choices(self, choices: lines.LinkChoices, locale: str) -> None:
        self.a_city.choices = city_choices(_l("Choose a city"))
        self.b_city.choices = city_choices(_l("Choose a city"))
        self.systems.choices = [
            SelectChoice(host, _("%(host)s (classified)", host=host) if secret else host)
            for host, secret in choices.systems
        ]
        self.server_rooms.choices = [
            SelectChoice(code, f"{code} {name_en if locale == 'en' else name_zh}")
            for code, name_zh, name_en in choices.rooms
        ]

    def values(self, department_key: str) -> dict[str, Any]:
        """The form as the import's columns (:func:`cloudmgr.lines.services.declare_line`)."""
        return {
            "code": (self.code.data or "").strip(),
            "department": department_key,
            "carrier": self.carrier.data,
            "line_type": self.line_type.data,
            "bandwidth_mbps": self.bandwidth_mbps.data,
            "a_site": self.a_site.data,
            "a_city": self.a_city.data,
            "a_county": self.a_county.data or "",
            "a_township": self.a_township.data or "",
            "b_site": self.b_site.data,
            "b_city": self.b_city.data,
            "b_county": self.b_county.data or "",
            "b_township": self.b_township.data or "",
            "monthly_rent": str(self.monthly_rent.data),
            "contract_start": self.contract_start.data,
            "contract_end": self.contract_end.data,
            "systems": " ".join(self.systems.data or []),
            "server_rooms": " ".join(self.server_rooms.data or []),
            "classified": "是" if self.classified.data else "否",
            "public_facing": "是" if self.public_facing.data else "否",
        }


class LinesImportForm(SafeForm):
    lines_file = FileField(_l("Spreadsheet (CSV or XLSX)"), validators=[FileRequired(_l("Choose a file."))])
    submit = SubmitField(_l("Import"))


class PlanLineForm(SafeForm):
    target = SelectField(_l("Target network"), choices=_choices(TARGET_NAMES), validators=[InputRequired(REQUIRED)])
    cutover_date = LocalisedDateField(_l("Cut-over date"), validators=[Optional()])
    submit = SubmitField(_l("Plan the cut-over"))


class BatchForm(SafeForm):
    city = SelectField(_l("Prefecture-level city"), validators=[InputRequired(REQUIRED)])
    county = SelectField(_l("County or district"), validators=[Optional()], validate_choice=False)
    cutover_date = LocalisedDateField(_l("Cut-over date"), validators=[InputRequired(REQUIRED)])
    submit = SubmitField(_l("Plan the batch"))

    def fill_choices(self, places: Mapping[str, list[str]]) -> None:
        self.city.choices = [SelectChoice("", _l("Choose a city"))] + [
            SelectChoice(city, city_name(city)) for city in places
        ]
        counties = [SelectChoice("", _l("The whole city"))]
        for city, names in places.items():
            counties += [SelectChoice(name, f"{city_name(city)} · {name}") for name in names]
        self.county.choices = counties

    def validate_city(self, field: Any) -> None:
        if not field.data:
            raise ValueError(str(REQUIRED))
