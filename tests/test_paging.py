"""The bounds of a page of a list (cloudmgr.paging): whatever is asked, the page is within them,
and a search text is taken literally (its % and _ are characters, not wildcards)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from cloudmgr.paging import MAX_PAGE, MAX_PER_PAGE, MAX_QUERY, PageRequest, like_pattern, paginate, search


def test_a_page_request_is_clamped_into_its_bounds() -> None:
    assert PageRequest.of(-5, -1, None) == PageRequest(page=1, per_page=1, q=None)
    assert PageRequest.of(10**15, 10**12, "  a   b ") == PageRequest(page=MAX_PAGE, per_page=MAX_PER_PAGE, q="a b")
    assert PageRequest.of(None, None, "", default_per_page=50) == PageRequest(page=1, per_page=50, q=None)
    assert len(PageRequest.of(q="x" * 10_000).q or "") == MAX_QUERY
    assert PageRequest.of(3, 20).offset == 40


def test_search_takes_wildcards_literally_and_pages_count_in_sql() -> None:
    assert like_pattern("100%_\\") == "%100\\%\\_\\\\%"
    metadata = MetaData()
    things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)))
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    names = ["alpha", "alphabet", "beta", "100% sure", "1000 sure", "under_score", "underXscore"]
    with Session(engine) as session:
        session.execute(insert(things), [{"name": n} for n in names])
        query = select(things.c.name)

        def found(text: str) -> list[str]:
            return list(session.scalars(search(query, text, things.c.name).order_by(things.c.id)))

        assert found("alpha") == ["alpha", "alphabet"]
        assert found("ALPHA bet") == ["alphabet"]  # every word, any case
        assert found("100%") == ["100% sure"]
        assert found("under_") == ["under_score"]
        assert found("") == names
        page = paginate(session, query, PageRequest.of(2, 3), things.c.id)
        assert (list(page.rows), page.total, page.pages, page.first_row, page.last_row) == (
            ["100% sure", "1000 sure", "under_score"],
            7,
            3,
            4,
            6,
        )
        past_the_end = paginate(session, query, PageRequest.of(99, 3), things.c.id)
        assert past_the_end.page == 3 and list(past_the_end.rows) == ["underXscore"]
