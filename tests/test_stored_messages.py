"""cloudmgr.stored_messages: a row keeps the message behind each English text it stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cloudmgr.messages import N_, Message, message
from cloudmgr.stored_messages import MAX_TEXT, kept_message, stored_text


@dataclass
class Row:
    messages: dict[str, Any] = field(default_factory=dict)


def test_a_message_is_stored_as_its_english_text_and_kept_under_it() -> None:
    row = Row()
    part = Message(N_("public address"))
    sentence = message(N_("%(part)s: %(error)s"), part=part, error="no more addresses")
    text = stored_text(row, sentence)
    assert text == "public address: no more addresses"
    kept = kept_message(row, text)
    assert kept is not None and kept.msgid == "%(part)s: %(error)s"
    # A message inside a message is kept as its dict; other values as JSON keeps them.
    assert kept.params == {"part": {"msgid": "public address", "params": {}}, "error": "no more addresses"}
    other = stored_text(row, message(N_("expired on %(date)s"), date=date(2027, 1, 2)))
    assert kept_message(row, other) == Message("expired on %(date)s", {"date": "2027-01-02"})
    assert set(row.messages) == {text, other}  # one row, several texts


def test_plain_text_keeps_no_message_and_a_long_text_is_cut_where_it_is_kept() -> None:
    row = Row()
    assert stored_text(row, "the cloud's own words") == "the cloud's own words"
    assert stored_text(row, None) is None
    assert row.messages == {}
    long = stored_text(row, message(N_("%(error)s!"), error="x" * (MAX_TEXT + 50)))
    assert long is not None and len(long) == MAX_TEXT and kept_message(row, long) is not None


def test_an_unknown_text_or_a_broken_entry_or_a_row_without_messages_has_no_message() -> None:
    row = Row({"a": {"params": {}}, "b": "text", "c": {"msgid": 3}})
    assert [kept_message(row, t) for t in ("a", "b", "c", "d", "", None)] == [None] * 6
    assert kept_message(object(), "a") is None
    assert kept_message(Row({"x": {"msgid": "m", "params": "bad"}}), "x") == Message("m", {})
