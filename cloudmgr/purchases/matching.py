"""Fuzzy matching of purchase items: wording (Chinese and English) and specs.

Wording is normalised (NFKC, lower case, common Chinese/English synonyms mapped to one
token, punctuation and spaces dropped) and compared by character n-grams (Dice
coefficient of the bigram and trigram sets), which copes with Chinese text without a
word segmenter and with English word order.  Specs are compared by their relative
distance per dimension (vCPU, RAM, disk).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Longest phrases first: "机架式服务器" before "服务器".
_SYNONYMS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            "机架式": "rack",
            "机架": "rack",
            "rack-mounted": "rack",
            "rackmount": "rack",
            "服务器": "server",
            "servers": "server",
            "主机": "server",
            "虚拟化": "virtual",
            "virtualisation": "virtual",
            "virtualization": "virtual",
            "数据库": "database",
            "db": "database",
            "存储": "storage",
            "磁盘阵列": "storage",
            "san": "storage",
            "nas": "storage",
            "交换机": "switch",
            "路由器": "router",
            "防火墙": "firewall",
            "内存": "ram",
            "memory": "ram",
            "硬盘": "disk",
            "磁盘": "disk",
            "hdd": "disk",
            "ssd": "disk",
            "处理器": "cpu",
            "核": "core",
            "cores": "core",
            "双路": "2socket",
            "两路": "2socket",
            "2路": "2socket",
            "dual-socket": "2socket",
            "two-socket": "2socket",
            "应用": "app",
            "application": "app",
            "系统": "system",
            "平台": "platform",
            "web": "web",
            "网站": "web",
            "业务": "business",
        }.items(),
        key=lambda kv: -len(kv[0]),
    )
)
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """One comparable string: synonyms mapped, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    for phrase, token in _SYNONYMS:
        if phrase.isascii():
            text = re.sub(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", f" {token} ", text)
        else:
            text = text.replace(phrase, f" {token} ")
    text = re.sub(r"(\d+)\s*(?:gb|g)(?![a-z])", r"\1g", text)
    return _DROP.sub("", text)


def ngrams(text: str, sizes: tuple[int, ...] = (2, 3)) -> set[str]:
    grams: set[str] = set()
    for n in sizes:
        if len(text) < n:
            if text:
                grams.add(text)
            continue
        grams.update(text[i : i + n] for i in range(len(text) - n + 1))
    return grams


def text_similarity(a: str, b: str) -> float:
    """Dice coefficient of the normalised texts' character n-grams (0.0-1.0)."""
    ga, gb = ngrams(normalise(a)), ngrams(normalise(b))
    if not ga or not gb:
        return 0.0
    return 2 * len(ga & gb) / (len(ga) + len(gb))


@dataclass(frozen=True)
class Specs:
    vcpus: int
    ram_gb: int
    disk_gb: int

    @property
    def empty(self) -> bool:
        return not (self.vcpus or self.ram_gb or self.disk_gb)


def spec_similarity(a: Specs, b: Specs) -> float:
    """1.0 for equal specs, falling with the mean relative distance of the dimensions either has."""
    distances = []
    for x, y in ((a.vcpus, b.vcpus), (a.ram_gb, b.ram_gb), (a.disk_gb, b.disk_gb)):
        if x == 0 and y == 0:
            continue
        distances.append(abs(x - y) / max(x, y))
    if not distances:
        return 1.0
    return 1.0 - sum(distances) / len(distances)


# Thresholds: wording alike AND specs alike (or neither item has specs and the wording is very alike).
TEXT_THRESHOLD = 0.45
SPEC_THRESHOLD = 0.75
TEXT_ONLY_THRESHOLD = 0.7


@dataclass(frozen=True)
class ItemMatch:
    text: float
    spec: float

    @property
    def score(self) -> float:
        return round((self.text + self.spec) / 2, 3)


def match_items(desc_a: str, specs_a: Specs, desc_b: str, specs_b: Specs) -> ItemMatch | None:
    """The match of two items, or None when they are not alike enough."""
    text = text_similarity(desc_a, desc_b)
    if specs_a.empty and specs_b.empty:
        return ItemMatch(round(text, 3), 1.0) if text >= TEXT_ONLY_THRESHOLD else None
    if specs_a.empty or specs_b.empty:
        return None
    spec = spec_similarity(specs_a, specs_b)
    if text >= TEXT_THRESHOLD and spec >= SPEC_THRESHOLD:
        return ItemMatch(round(text, 3), round(spec, 3))
    return None
