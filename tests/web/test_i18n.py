from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from cloudmgr.demo import DemoLogin
from cloudmgr.runtime import Runtime
from web.core import i18n

WEB = i18n.TRANSLATIONS_DIR.parent
CLOUDMGR = WEB.parent / "cloudmgr"
PO = i18n.TRANSLATIONS_DIR / "zh" / "LC_MESSAGES" / "messages.po"


def test_chinese_by_default(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "政务云管理平台" in html and "用户名" in html and "密码" in html


def test_browser_language_is_ignored(client: FlaskClient) -> None:
    html = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "用户名" in html


def test_switch_to_english_and_back(client: FlaskClient) -> None:
    response = client.get("/language/en?next=/login")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Government Cloud Management Platform" in html and "Username" in html
    assert "用户名" not in html
    client.get("/language/zh")
    assert "用户名" in client.get("/login").get_data(as_text=True)


def test_lang_query_parameter_works_and_sticks(client: FlaskClient) -> None:
    assert "Username" in client.get("/login?lang=en").get_data(as_text=True)
    assert "Username" in client.get("/login").get_data(as_text=True)


def test_language_switch_link_in_the_header(client: FlaskClient) -> None:
    html = client.get("/login?lang=en").get_data(as_text=True)
    assert 'href="/language/zh?next=/login"' in html  # without the lang= that would switch back


def test_language_survives_login_and_names_come_from_the_database(
    client: FlaskClient, login_as: Callable[[str], DemoLogin]
) -> None:
    client.get("/language/en")
    login_as("dept_staff")
    html = client.get("/portal/").get_data(as_text=True)
    assert "Provincial Department of Education" in html
    assert "省教育厅" not in html
    assert "Department IT staff" in html


def test_unknown_language_is_ignored(client: FlaskClient) -> None:
    client.get("/language/fr")
    assert "用户名" in client.get("/login?lang=fr").get_data(as_text=True)


def test_the_chinese_catalog_translates_every_message() -> None:
    """Fails when a msgid in web/ has no Chinese translation (run pybabel extract/update)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    extracted = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(WEB), method_map, keywords=keywords):
        extracted.add(message if isinstance(message, str) else message[0])
    # The domain's sentences (cloudmgr.messages.N_), translated where they are shown.
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(CLOUDMGR), [("**.py", "python")], keywords={"N_": None}
    ):
        extracted.add(message if isinstance(message, str) else message[0])
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    translated = {}
    for entry in catalog:
        if not entry.id:
            continue
        key = entry.id if isinstance(entry.id, str) else entry.id[0]
        text = entry.string if isinstance(entry.string, str) else entry.string[0]
        if text and not entry.fuzzy:
            translated[key] = text
    missing = sorted(extracted - translated.keys())
    assert not missing, f"untranslated messages: {missing}"


def test_missing_mo_files_are_compiled_at_startup(tmp_path: Path) -> None:
    source = tmp_path / "translations"
    (source / "zh" / "LC_MESSAGES").mkdir(parents=True)
    (source / "zh" / "LC_MESSAGES" / "messages.po").write_bytes(PO.read_bytes())
    compiled = i18n.compile_catalogs(source, fallback_dir=tmp_path / "fallback")
    assert compiled == source
    assert (source / "zh" / "LC_MESSAGES" / "messages.mo").stat().st_size > 0


def test_read_only_translations_compile_into_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "translations"
    (source / "zh" / "LC_MESSAGES").mkdir(parents=True)
    (source / "zh" / "LC_MESSAGES" / "messages.po").write_bytes(PO.read_bytes())
    real_compile = i18n._compile_one

    def read_only_source(po_path: Path, mo_path: Path) -> None:
        if mo_path.is_relative_to(source):
            raise PermissionError(13, "Read-only file system", str(mo_path))
        real_compile(po_path, mo_path)

    monkeypatch.setattr(i18n, "_compile_one", read_only_source)
    compiled = i18n.compile_catalogs(source, fallback_dir=tmp_path / "fallback")
    assert compiled == tmp_path / "fallback"
    assert (tmp_path / "fallback" / "zh" / "LC_MESSAGES" / "messages.mo").is_file()
    assert not (source / "zh" / "LC_MESSAGES" / "messages.mo").exists()


def test_app_starts_without_compiled_catalogs(seeded: Runtime) -> None:
    mo = PO.with_suffix(".mo")
    mo.unlink(missing_ok=True)
    from web import create_app

    client = create_app(runtime=seeded).test_client()
    assert mo.is_file()
    assert "用户名" in client.get("/login").get_data(as_text=True)
