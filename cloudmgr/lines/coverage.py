"""Where the e-government extranet reaches: for each of the province's 11 cities, and each county and
township a line ends in, whether a line cut over onto the extranet ends there (in that city, county or
township).  A place a line ends in is known from the register; the 11 cities are always listed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.lines.models import LineState, LineTarget, NetworkLine

#: The province's 11 prefecture-level cities (设区市).
CITIES = (
    "石家庄市", "唐山市", "秦皇岛市", "邯郸市", "邢台市", "保定市", "张家口市", "承德市", "沧州市", "廊坊市", "衡水市",
)  # fmt: skip


@dataclass(frozen=True)
class Place:
    city: str
    county: str = ""  # "" for the city itself
    township: str = ""  # "" for the county (or city) itself

    @property
    def level(self) -> str:
        return "township" if self.township else "county" if self.county else "city"


@dataclass(frozen=True)
class CoverageRow:
    place: Place
    reached: bool
    lines: int  # lines in the register ending here (in the place or below it)


def _ends(line: NetworkLine) -> list[Place]:
    return [
        Place(line.a_city, line.a_county, line.a_township if line.a_county else ""),
        Place(line.b_city, line.b_county, line.b_township if line.b_county else ""),
    ]


def _within(end: Place, place: Place) -> bool:
    if end.city != place.city:
        return False
    if place.county and end.county != place.county:
        return False
    return not place.township or end.township == place.township


def extranet_coverage(session: Session) -> list[CoverageRow]:
    lines = list(session.scalars(select(NetworkLine)))
    places: set[Place] = {Place(city) for city in CITIES}
    for line in lines:
        for end in _ends(line):
            places.add(Place(end.city))
            if end.county:
                places.add(Place(end.city, end.county))
            if end.township:
                places.add(end)
    reaching = [
        end
        for line in lines
        if line.state == LineState.CUT_OVER and line.target == LineTarget.EXTRANET
        for end in _ends(line)
    ]
    ends = [end for line in lines for end in _ends(line)]
    order = {city: i for i, city in enumerate(CITIES)}
    rows = [
        CoverageRow(
            place,
            reached=any(_within(end, place) for end in reaching),
            lines=sum(1 for end in ends if _within(end, place)),
        )
        for place in places
    ]
    return sorted(rows, key=lambda r: (order.get(r.place.city, 99), r.place.city, r.place.county, r.place.township))
