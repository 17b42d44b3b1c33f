"""Human names of the domain's codes (roles, levels, cloud kinds, zones, places), translatable.

Templates use them through the ``label_*`` filters registered by :func:`init_app`, e.g.
``{{ cloud.kind|label_kind }}``.  Unknown codes are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from flask_babel import lazy_gettext as _l

ROLE_LABELS: Mapping[str, object] = {
    "dept_staff": _l("Department IT staff"),
    "dept_head": _l("Department head"),
    "operator": _l("Cloud operator"),
    "finance": _l("Finance reviewer"),
    "admin": _l("Administrator"),
}

LEVEL_LABELS: Mapping[str, object] = {
    "province": _l("Province"),
    "city": _l("City"),
    "county": _l("County"),
}

KIND_LABELS: Mapping[str, object] = {
    "base": _l("Base cloud (the 1)"),
    "industry": _l("Industry cloud (the 14)"),
    "other": _l("Cloud added by need (the N)"),
}

ZONE_LABELS: Mapping[str, object] = {
    "internet": _l("Internet"),
    "extranet": _l("E-government extranet"),
}

# The province's eleven prefecture-level cities and the counties in the organisation files.
PLACE_LABELS: Mapping[str, object] = {
    "shijiazhuang": _l("Shijiazhuang"),
    "tangshan": _l("Tangshan"),
    "qinhuangdao": _l("Qinhuangdao"),
    "handan": _l("Handan"),
    "xingtai": _l("Xingtai"),
    "baoding": _l("Baoding"),
    "zhangjiakou": _l("Zhangjiakou"),
    "chengde": _l("Chengde"),
    "cangzhou": _l("Cangzhou"),
    "langfang": _l("Langfang"),
    "hengshui": _l("Hengshui"),
    "qianan": _l("Qian'an"),
    "zhengding": _l("Zhengding"),
}


def _lookup(table: Mapping[str, object], code: object) -> str:
    if code is None or code == "":
        return ""
    key = str(getattr(code, "value", code))
    return str(table.get(key, key))


def role_label(code: object) -> str:
    return _lookup(ROLE_LABELS, code)


def level_label(code: object) -> str:
    return _lookup(LEVEL_LABELS, code)


def kind_label(code: object) -> str:
    return _lookup(KIND_LABELS, code)


def zone_label(code: object) -> str:
    return _lookup(ZONE_LABELS, code)


def place_label(code: object) -> str:
    return _lookup(PLACE_LABELS, code)


def init_app(app: Flask) -> None:
    app.add_template_filter(role_label, "label_role")
    app.add_template_filter(level_label, "label_level")
    app.add_template_filter(kind_label, "label_kind")
    app.add_template_filter(zone_label, "label_zone")
    app.add_template_filter(place_label, "label_place")
