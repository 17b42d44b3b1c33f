"""The demo departments' dedicated lines, so that ``make run`` shows the network programme mid-way:
some lines cut over or retired, some planned, the rest in service.  Idempotent: a line whose code is
stored is left as it is.  Systems and server rooms are linked when the demo inventory is loaded
(``cloudmgr inventory import inventory/legacy.yml`` runs first in ``make run``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.lines.coverage import CITIES
from cloudmgr.lines.models import Carrier, LineState, LineTarget, LineType, NetworkLine
from cloudmgr.lines.rules import proposed_target
from cloudmgr.lines.services import plan_line, record_cutover
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department, Role
from cloudmgr.programme.tracking import today as province_today

T, U, M, B = Carrier.TELECOM, Carrier.UNICOM, Carrier.MOBILE, Carrier.BROADNET
CITY_CODES = ("SJZ", "TS", "QHD", "HD", "XT", "BD", "ZJK", "CD", "CZ", "LF", "HS")


@dataclass(frozen=True)
class DemoLine:
    code: str
    department: str
    carrier: Carrier
    line_type: LineType
    bandwidth_mbps: int
    a: tuple[str, str, str, str]  # site, city, county, township
    b: tuple[str, str, str, str]
    rent: str
    start: date
    end: date
    systems: tuple[str, ...] = ()
    classified: bool = False
    public: bool = False


def _demo_lines() -> list[DemoLine]:
    sjz = "石家庄市"
    jyt = ("省教育厅信息中心机房", sjz, "长安区", "")
    qa = ("迁安市农业农村局", "唐山市", "迁安市", "")
    lines = [
        DemoLine("JYT-INT-001", "prov-education", T, LineType.INTERNET, 200, jyt,
                 ("中国电信石家庄分公司", sjz, "桥西区", ""), "4800.00", date(2022, 3, 1), date(2027, 2, 28),
                 ("jyt-portal-web01", "jyt-portal-web02"), public=True),
        DemoLine("JYT-MPLS-002", "prov-education", U, LineType.MPLS_VPN, 50, jyt,
                 ("保定市教育局", "保定市", "竞秀区", ""), "2600.00", date(2021, 9, 1), date(2027, 8, 31),
                 ("jyt-xueji-app01",)),
        DemoLine("JYT-SDH-003", "prov-education", T, LineType.SDH, 10, ("省教育考试院", sjz, "裕华区", ""),
                 ("省教育厅保密室", sjz, "长安区", ""), "1800.00", date(2020, 1, 1), date(2028, 12, 31),
                 ("jyt-exam-paper01",), classified=True),
        DemoLine("JYT-INT-004", "prov-education", M, LineType.INTERNET, 500, ("省教育考试院", sjz, "裕华区", ""),
                 ("中国移动河北公司", sjz, "新华区", ""), "7200.00", date(2023, 5, 1), date(2027, 4, 30),
                 ("jyt-gaokao-web01",), public=True),
        DemoLine("RST-INT-101", "prov-hrss", T, LineType.INTERNET, 100, ("省人社厅机房", sjz, "桥西区", ""),
                 ("中国电信石家庄分公司", sjz, "桥西区", ""), "3500.00", date(2022, 1, 1), date(2026, 12, 31),
                 ("rst-jiuye-web01",), public=True),
        DemoLine("CZT-MPLS-201", "prov-finance", U, LineType.MPLS_VPN, 20, ("省财政厅机房", sjz, "长安区", ""),
                 ("人民银行石家庄中心支行", sjz, "长安区", ""), "2200.00", date(2021, 7, 1), date(2027, 6, 30),
                 ("czt-zhifu-app01",)),
        DemoLine("CZT-FIB-202", "prov-finance", T, LineType.LEASED_FIBRE, 1000, ("省财政厅机房", sjz, "长安区", ""),
                 ("省财政厅灾备中心", sjz, "鹿泉区", ""), "5600.00", date(2019, 10, 1), date(2027, 9, 30),
                 ("czt-hexin-db01",), classified=True),
        DemoLine("BGT-SDH-301", "prov-gov-office", T, LineType.SDH, 2, ("省政府办公厅机要室", sjz, "长安区", ""),
                 ("省委机要局", sjz, "长安区", ""), "980.00", date(2018, 1, 1), date(2027, 12, 31),
                 ("bgt-jiyao01", "bgt-gongwen01"), classified=True),
        DemoLine("BGT-MSTP-302", "prov-gov-office", U, LineType.MSTP, 100, ("省政府办公厅机房", sjz, "长安区", ""),
                 ("省政务服务管理办公室", sjz, "桥西区", ""), "3800.00", date(2022, 6, 1), date(2027, 1, 31),
                 ("bgt-oa-app01",)),
        DemoLine("BGT-INT-303", "prov-gov-office", T, LineType.INTERNET, 1000, ("省政府办公厅机房", sjz, "长安区", ""),
                 ("中国电信河北公司", sjz, "桥西区", ""), "16800.00", date(2023, 1, 1), date(2028, 12, 31),
                 ("bgt-portal-web01",), public=True),
        DemoLine("ZZB-MSTP-401", "prov-public-security", M, LineType.MSTP, 50, ("省综治办机房", sjz, "长安区", ""),
                 ("邢台市综治中心", "邢台市", "襄都区", ""), "2900.00", date(2021, 4, 1), date(2027, 5, 31),
                 ("zzb-wangge-app01",)),
        DemoLine("ZZB-SDH-402", "prov-public-security", T, LineType.SDH, 4, ("省综治办机房", sjz, "长安区", ""),
                 ("省委政法委", sjz, "长安区", ""), "1300.00", date(2019, 1, 1), date(2027, 12, 31),
                 ("zzb-wenwen-db01",), classified=True),
        DemoLine("WJW-MPLS-501", "prov-health", U, LineType.MPLS_VPN, 100, ("省卫健委信息中心", sjz, "长安区", ""),
                 ("河北医科大学第二医院", sjz, "新华区", ""), "4200.00", date(2022, 8, 1), date(2027, 7, 31),
                 ("wjw-jiankang-app01",)),
        DemoLine("WJW-INT-502", "prov-health", M, LineType.INTERNET, 200, ("省卫健委信息中心", sjz, "长安区", ""),
                 ("中国移动河北公司", sjz, "新华区", ""), "4600.00", date(2023, 3, 1), date(2027, 2, 28),
                 ("wjw-yuyue-web01",), public=True),
        DemoLine("STH-MSTP-601", "prov-environment", B, LineType.MSTP, 20, ("省生态环境监测中心", sjz, "裕华区", ""),
                 ("承德市环境监测站", "承德市", "双桥区", ""), "1900.00", date(2020, 6, 1), date(2028, 5, 31),
                 ("sthjt-jiance-app01",)),
        DemoLine("SJZ-MSTP-701", "sjz-gov-office", T, LineType.MSTP, 100, ("石家庄市政府机房", sjz, "长安区", ""),
                 ("正定县政务服务中心", sjz, "正定县", ""), "2400.00", date(2021, 1, 1), date(2026, 12, 31),
                 ("sjz-12345-app01",)),
        DemoLine("SJZ-SDH-702", "sjz-gov-office", T, LineType.SDH, 2, ("石家庄市委机要局", sjz, "长安区", ""),
                 ("石家庄市政府机要室", sjz, "长安区", ""), "760.00", date(2018, 7, 1), date(2028, 6, 30),
                 ("sjz-jiyao01",), classified=True),
        DemoLine("SJZ-INT-703", "sjz-education", U, LineType.INTERNET, 300, ("石家庄市教育局机房", sjz, "桥西区", ""),
                 ("中国联通石家庄分公司", sjz, "桥西区", ""), "5200.00", date(2023, 2, 1), date(2027, 1, 31),
                 ("sjz-jyj-zhaosheng01",), public=True),
        DemoLine("TS-MSTP-801", "ts-hrss", M, LineType.MSTP, 20, ("唐山市社保中心", "唐山市", "路北区", ""),
                 ("迁安市社保所", "唐山市", "迁安市", "迁安镇"), "1600.00", date(2021, 3, 1), date(2027, 2, 28),
                 ("ts-rsj-shebao01",)),
        DemoLine("TS-MSTP-802", "ts-hrss", T, LineType.MSTP, 10, ("唐山市社保中心", "唐山市", "路北区", ""),
                 ("遵化市社保所", "唐山市", "遵化市", "华明路街道"), "1200.00", date(2020, 9, 1), date(2027, 8, 31),
                 ("ts-rsj-shebao01",)),
        DemoLine("TS-MPLS-811", "ts-transport", U, LineType.MPLS_VPN, 50, ("唐山市交通运输局", "唐山市", "路南区", ""),
                 ("唐山市公交集团调度中心", "唐山市", "路北区", ""), "2100.00", date(2022, 4, 1), date(2027, 3, 31),
                 ("ts-jtj-gongjiao01",)),
        DemoLine("ZD-MSTP-901", "sjz-zhengding-gov", B, LineType.MSTP, 10, ("正定县政府机房", sjz, "正定县", ""),
                 ("诸福屯镇政府", sjz, "正定县", "诸福屯镇"), "900.00", date(2021, 5, 1), date(2028, 4, 30),
                 ("zd-oa01",)),
        DemoLine("ZD-MSTP-902", "sjz-zhengding-gov", T, LineType.MSTP, 10, ("正定县政府机房", sjz, "正定县", ""),
                 ("新城铺镇政府", sjz, "正定县", "新城铺镇"), "900.00", date(2021, 5, 1), date(2027, 4, 30),
                 ("zd-oa01",)),
        DemoLine("QA-MSTP-951", "ts-qianan-agriculture", M, LineType.MSTP, 10, qa,
                 ("杨店子镇农业服务站", "唐山市", "迁安市", "杨店子镇"), "850.00", date(2022, 2, 1), date(2027, 1, 31),
                 ("qa-nyj-nongzi01", "qa-nyj-fupin01")),
    ]  # fmt: skip
    carriers = (T, U, M, T, U, T, M, U, T, M, B)
    for i, (city, city_code) in enumerate(zip(CITIES, CITY_CODES, strict=True)):
        bandwidth = 100 if i < 2 else 50
        lines.append(
            DemoLine(f"RST-MSTP-{city_code}", "prov-hrss", carriers[i], LineType.MSTP, bandwidth,
                     ("省人社厅机房", sjz, "桥西区", ""), (f"{city[:-1]}市社会保险事业管理局", city, "", ""),
                     f"{2800 + 1200 * (bandwidth == 100) + 150 * i}.00", date(2019 + i % 4, 1 + i, 1),
                     date(2027 + i % 2, 1 + i, 28), ("rst-shebao-app01",))
        )  # fmt: skip
    for i, city in enumerate(CITIES[1:6]):
        lines.append(
            DemoLine(f"CZT-MSTP-{CITY_CODES[i + 1]}", "prov-finance", carriers[i + 1], LineType.MSTP, 20,
                     ("省财政厅机房", sjz, "长安区", ""), (f"{city[:-1]}市财政局", city, "", ""),
                     f"{1900 + 100 * i}.00", date(2020, 4, 1), date(2027 + i % 2, 3, 31), ("czt-budget-app01",))
        )  # fmt: skip
    return lines


#: City lines the operators retire: the extranet already reaches those cities' bureaus.
DEMO_RETIRED = frozenset({"RST-MSTP-SJZ", "RST-MSTP-CZ", "CZT-MSTP-QHD"})
#: The day the demo's contract dates were written: they move with today, so the demo always shows the
#: same picture (contracts ending soon, lines cut over over the past months).
DEMO_WRITTEN = date(2026, 12, 7)
#: Contracts that end soon, in days from today: the finance page lists them with what to do.
DEMO_ENDING = {
    "TS-MSTP-801": 20, "RST-INT-101": 25, "SJZ-MSTP-701": 40, "JYT-MSTP-005": 45, "WJW-INT-502": 60,
    "QA-MSTP-951": 75, "CZT-MPLS-201": 85,
}  # fmt: skip
#: Renewals waiting for finance: (line, department user, new contract in days from today, new rent).  The
#: first runs between two places the extranet already reaches (after BGT-MSTP-302's cut-over): flagged.
DEMO_RENEWALS = (
    ("JYT-MSTP-005", "zhangwei", 45 + 3 * 365, "2600.00"),
    ("TS-MSTP-801", "wangfang", 20 + 2 * 365, "1550.00"),
)


def _more_lines() -> list[DemoLine]:
    """Lines added to the demo for the finance review (after the others: their plans do not move)."""
    centre = ("省教育厅信息中心机房", "石家庄市", "长安区", "")
    office = ("省教育厅招生考试办公室", "石家庄市", "桥西区", "")
    return [
        DemoLine("JYT-MSTP-005", "prov-education", U, LineType.MSTP, 50, centre, office, "2600.00",
                 date(2021, 2, 1), date(2027, 1, 21), ("jyt-xueji-app01",)),
    ]  # fmt: skip


def _plan_for(index: int, code: str) -> str:
    """Mid-way: a quarter cut over (or retired), a third planned, the rest in service (and those whose
    renewal waits for finance)."""
    if code in {renewal[0] for renewal in DEMO_RENEWALS}:
        return "none"
    if index % 4 == 0 or code in DEMO_RETIRED:
        return "done"
    if index % 3 == 1:
        return "planned"
    return "none"


def _when_done(index: int, today: date) -> date:
    """Cut-overs spread over the past eleven months, so that the burndown falls month by month."""
    return today - timedelta(days=15 + 30 * ((index * 5) % 11))


def seed_demo_lines(session: Session, *, actor: Actor, today: date | None = None) -> int:
    """Create the demo lines not stored yet (with their plans and cut-overs, dated relative to today), and
    the demo's renewal requests waiting for finance; returns how many lines were created."""
    today = today or province_today()
    shift = today - DEMO_WRITTEN
    stored = set(session.scalars(select(NetworkLine.code)))
    departments = {d.key: d for d in session.scalars(select(Department))}
    systems = {s.hostname: s for s in session.scalars(select(LegacySystem))}
    rooms = {r.code: r for r in session.scalars(select(ServerRoom))}
    created = 0
    for index, demo in enumerate(_demo_lines() + _more_lines()):
        department = departments.get(demo.department)
        if demo.code in stored or department is None:
            continue
        carried = [systems[h] for h in demo.systems if h in systems]
        end = today + timedelta(days=DEMO_ENDING[demo.code]) if demo.code in DEMO_ENDING else demo.end + shift
        line = NetworkLine(
            code=demo.code, department_id=department.id, carrier=demo.carrier, line_type=demo.line_type,
            bandwidth_mbps=demo.bandwidth_mbps, a_site=demo.a[0], a_city=demo.a[1], a_county=demo.a[2],
            a_township=demo.a[3], b_site=demo.b[0], b_city=demo.b[1], b_county=demo.b[2], b_township=demo.b[3],
            monthly_rent=Decimal(demo.rent), contract_start=demo.start + shift, contract_end=end,
            declared_classified=demo.classified, public_facing=demo.public, state=LineState.IN_SERVICE,
        )  # fmt: skip
        line.systems = carried
        line.rooms = [rooms[code] for code in {s.server_room.code for s in carried} if code in rooms]
        session.add(line)
        session.flush()
        created += 1
        step = _plan_for(index, demo.code)
        if step == "none":
            continue
        target = LineTarget.RETIRE if demo.code in DEMO_RETIRED else proposed_target(line).target
        on = _when_done(index, today) if step == "done" else today + timedelta(days=30 + 30 * (index % 6))
        plan_line(session, demo.code, target, actor=actor, entry_point="demo", on=on)
        if step == "done":
            record_cutover(session, demo.code, actor=actor, entry_point="demo")
            # recorded on its day (the demo's history), not the day the demo was loaded
            line.cut_over_at = datetime.combine(on, time(10, 0), tzinfo=UTC)
    _seed_renewals(session, today)
    return created


def _seed_renewals(session: Session, today: date) -> None:
    """The demo's renewal requests, submitted by the departments' demo users (once: a line with any
    request is left alone)."""
    from cloudmgr.lines import finance
    from cloudmgr.lines.finance_models import LineRentalRequest

    asked = set(session.scalars(select(LineRentalRequest.line_id)))
    for code, username, days, rent in DEMO_RENEWALS:
        line = session.scalars(select(NetworkLine).where(NetworkLine.code == code)).one_or_none()
        if line is None or line.id in asked or line.state not in finance.RENEWABLE:
            continue
        staff = Actor(username, Role.DEPT_STAFF, department_id=line.department_id)
        finance.create_rental(
            session,
            staff,
            finance.RentalInput(
                kind="renewal",
                line_code=code,
                monthly_rent=rent,
                contract_end=(today + timedelta(days=days)).isoformat(),
                purpose="合同即将到期，业务仍需使用，申请续约",
            ),
            submit=True,
            entry_point="demo",
        )
