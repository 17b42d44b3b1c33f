"""The quota size menu names each size and its main limits in the page's language (issue 18:
it read ``small (cores=16, ram_mb=32, …)``, raw keys with 32 GB called ram_mb)."""

from __future__ import annotations

from flask import Flask

from tests.web.helpers import logged_in


def test_the_size_menu_reads_as_words(app: Flask) -> None:
    staff = logged_in(app, "zhangwei")
    html = staff.get("/portal/quotas?lang=en").get_data(as_text=True)
    assert "Small: 16 cores / 32 GB memory / 8 servers / 500 GB volumes / 2 public addresses" in html
    assert "Extra large: 1,024 cores" not in html  # cores are not grouped; volume sizes are
    assert "32,000 GB volumes" in html
    assert "ram_mb" not in html and "cores=" not in html
