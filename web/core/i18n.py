"""Languages: Chinese by default, English on request.

Which language a request gets, first match wins:

1. ``?lang=en`` / ``?lang=zh`` in the URL (also remembered in the session);
2. the language stored in the session by the header's switch (``/language/<code>``);
3. ``settings.default_locale`` (``zh`` unless configured).

The browser's Accept-Language is deliberately ignored: the product is Chinese first.

Strings: msgids are English; Python code uses ``gettext``/``_`` (and ``lazy_gettext``/``_l``
for module-level strings such as form labels), templates ``{{ _('...') }}``.  The domain's
sentences (reasons, findings, checks) are :class:`cloudmgr.messages.Message`: a msgid marked
with ``N_`` and its parameters, shown with ``{{ value|message }}`` (``web.common.messages``).  The catalog
is ``web/translations/zh/LC_MESSAGES/messages.po``.  After adding strings::

    pybabel extract -F web/babel.cfg -k _l -k lazy_gettext -k N_ -o /tmp/messages.pot web cloudmgr
    pybabel update -i /tmp/messages.pot -d web/translations -l zh --no-fuzzy-matching
    # translate the new entries in messages.po, then (optional, the app does it itself):
    pybabel compile -d web/translations

``tests/web/test_i18n.py`` fails while any msgid lacks a Chinese translation.

Compiled catalogs (``.mo``) are not committed: :func:`compile_catalogs` builds any that
are missing or older than their ``.po`` at startup.  When the package folder is not
writable they are built under ``<instance>/translations`` instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import format_datetime, get_locale, get_translations

from web.core.extensions import babel

log = logging.getLogger(__name__)

LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
SESSION_KEY = "lang"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"  # web/translations
DOMAIN = "messages"


def _compile_one(po_path: Path, mo_path: Path) -> None:
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=po_path.parent.parent.name, domain=DOMAIN)
    mo_path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: several gunicorn workers may compile at the same time.
    fd, tmp = tempfile.mkstemp(dir=mo_path.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_catalogs(source_dir: Path = TRANSLATIONS_DIR, fallback_dir: Path | None = None) -> Path:
    """Build every missing or outdated ``.mo`` under ``source_dir``; returns the folder that
    holds the compiled catalogs (``source_dir``, or ``fallback_dir`` when it is read-only)."""
    target_dir = source_dir
    for po_path in sorted(source_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        relative = po_path.relative_to(source_dir).with_suffix(".mo")
        mo_path = target_dir / relative
        if mo_path.is_file() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        try:
            _compile_one(po_path, mo_path)
        except OSError:
            if fallback_dir is None or target_dir == fallback_dir:
                raise
            log.warning("cannot write %s; compiling the catalogs under %s", mo_path, fallback_dir)
            return compile_catalogs_into(source_dir, fallback_dir)
        log.info("compiled %s", mo_path)
    return target_dir


def compile_catalogs_into(source_dir: Path, target_dir: Path) -> Path:
    for po_path in sorted(source_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = target_dir / po_path.relative_to(source_dir).with_suffix(".mo")
        if not mo_path.is_file() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            _compile_one(po_path, mo_path)
    return target_dir


def select_locale() -> str:
    supported = LANGUAGES.keys()
    asked = request.args.get("lang")
    if asked in supported:
        return asked
    stored = session.get(SESSION_KEY)
    if stored in supported:
        return str(stored)
    default: str = current_app.config["BABEL_DEFAULT_LOCALE"]
    return default


def remember_locale_from_query() -> None:
    """``before_request``: ``?lang=xx`` is remembered for the following pages too."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and session.get(SESSION_KEY) != asked and request.blueprint != "api":
        session[SESSION_KEY] = asked


def current_locale() -> str:
    """``zh`` or ``en``: what ``display_name(locale)`` of clouds and departments expects."""
    locale = get_locale()
    return locale.language if locale is not None else "zh"


def init_app(app: Flask, *, instance_path: Path) -> None:
    compiled_dir = compile_catalogs(TRANSLATIONS_DIR, fallback_dir=instance_path / "translations")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_dir)
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(remember_locale_from_query)
    _install_fast_template_helpers(app)

    @app.context_processor
    def _i18n_context() -> dict[str, object]:
        return {
            "current_locale": current_locale(),
            "languages": LANGUAGES,
            "lang_next": _path_without_lang(),
            "time_zone": time_zone_label(),
            "time_zone_name": current_app.config["BABEL_DEFAULT_TIMEZONE"],
        }


def _request_translations() -> Translations | NullTranslations:
    """The request's catalog, looked up once: flask-babel resolves the locale again on every
    string, and a list page asks for a few hundred (the page's labels, each row's badges)."""
    if not has_request_context():
        outside: Translations | NullTranslations = get_translations()
        return outside
    translations: Translations | NullTranslations | None = g.get("_cloudmgr_translations")
    if translations is None:
        translations = g._cloudmgr_translations = get_translations()
    return translations


# The patterns the templates use, as strftime formats: babel's formatter parses the pattern
# and reads locale data for each value, which is most of a list page's date cost.
_STRFTIME_PATTERNS: dict[str, str] = {
    "yyyy-MM-dd HH:mm": "%Y-%m-%d %H:%M",
    "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "yyyy-MM-dd": "%Y-%m-%d",
}


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_datetime_fast(value: datetime | None, pattern: str | None = None) -> str:
    """``datetimeformat`` for the numeric patterns above (same result as flask-babel's:
    converted to ``BABEL_DEFAULT_TIMEZONE``), flask-babel's own for anything else."""
    if value is None:
        return ""
    strftime_pattern = _STRFTIME_PATTERNS.get(pattern or "")
    if strftime_pattern is None:
        return str(format_datetime(value, pattern))
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(_zone(current_app.config["BABEL_DEFAULT_TIMEZONE"])).strftime(strftime_pattern)


def time_zone_label(at: datetime | None = None) -> str:
    """The zone the pages show times in and its offset then: ``Asia/Shanghai, UTC+08:00``."""
    zone = _zone(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    offset = (at or datetime.now(UTC)).astimezone(zone).strftime("%z")
    return f"{zone.key}, UTC{offset[:3]}:{offset[3:]}"


def _install_fast_template_helpers(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _request_translations().ugettext(s),
        ngettext=lambda s, p, n: _request_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _request_translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.filters["datetimeformat"] = format_datetime_fast


def _path_without_lang() -> str:
    """The current page's address without ``lang=``, for the language switch's ``next``."""
    if request.method != "GET":
        return request.path
    query = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "lang"])
    return f"{request.path}?{query}" if query else request.path
