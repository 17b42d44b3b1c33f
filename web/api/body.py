"""Reading API input strictly: JSON bodies field by field, and query parameters.

Every problem becomes a 400 ``{"error": "invalid", "message": ...}`` naming the field; the
problems of one body are reported together.  Nothing the client sends can reach a
service with the wrong type, an out-of-range integer (the database's columns are 32-bit)
or an unbounded string.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import request

from cloudmgr.errors import ValidationFailed
from cloudmgr.text import bidi_problem

MAX_ID = 2**31 - 1


class BadJson(ValidationFailed):
    code = "bad_json"


def _bidi_problems(data: dict[str, Any]) -> list[str]:
    """Every string of the body (names and values, at any depth) that carries a text-direction
    control character, named by its path (``items[2].description``).  Iterative: the document
    may be nested as deep as the JSON parser allowed."""
    problems: list[str] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack and len(problems) < 10:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                name = f"{path}.{key}" if path else str(key)
                problem = bidi_problem(path or "a field name", key)
                if problem is not None:
                    problems.append(problem)
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            problem = bidi_problem(path, value)
            if problem is not None:
                problems.append(problem)
    return problems


class Body:
    """The request's JSON object.  Read each field once with a typed getter, then ``done()``."""

    def __init__(self, *, optional: bool = False) -> None:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if not optional:
                raise BadJson("send a JSON object in the request body (Content-Type: application/json)")
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                raise BadJson(f"the request body is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(data, dict):
            raise BadJson("the request body must be a JSON object")
        bidi = _bidi_problems(data)
        if bidi:
            raise ValidationFailed("; ".join(bidi))
        self._data: dict[str, Any] = data
        self._read: set[str] = set()
        self.problems: list[str] = []

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        value = self._data.get(name)
        if value is None and required:
            self.problems.append(f"{name} is required")
        return value

    def string(self, name: str, *, required: bool = True, max_length: int = 255, default: str | None = None) -> Any:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problems.append(f"{name} must be a string")
            return default
        if len(value) > max_length:
            self.problems.append(f"{name} is too long (at most {max_length} characters)")
            return default
        return value

    def integer(self, name: str, *, required: bool = True, minimum: int = 0, maximum: int = MAX_ID) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{name} must be an integer")
            return None
        if not minimum <= value <= maximum:
            self.problems.append(f"{name} must be between {minimum} and {maximum}")
            return None
        return value

    def boolean(self, name: str, *, default: bool, required: bool = False) -> bool:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.append(f"{name} must be true or false")
            return default
        return value

    def date(self, name: str, *, required: bool = True) -> Any:
        value = self.string(name, required=required, max_length=10)
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.problems.append(f"{name} must be a date as YYYY-MM-DD")
            return None

    def mapping(self, name: str, *, required: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problems.append(f"{name} must be an object")
            return None
        return value

    def raw(self, name: str, *, required: bool = True) -> Any:
        """The field's JSON value as sent, for a service that parses a structure of its own
        (a list of firewall rules) and names the part that is wrong."""
        return self._get(name, required)

    def object_list(self, name: str, *, max_items: int, required: bool = False) -> list[dict[str, Any]]:
        """A list of JSON objects (each then read by the caller, naming ``name[n].field``)."""
        value = self._get(name, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.append(f"{name} must be a list of objects")
            return []
        if len(value) > max_items:
            self.problems.append(f"{name}: at most {max_items} items")
            return []
        return value

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def done(self) -> None:
        """Raise the problems found (and unknown fields: a typo must not be ignored)."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            self.problems.append(f"unknown field(s): {', '.join(k[:64] for k in unknown[:10])}")
        if self.problems:
            raise ValidationFailed("; ".join(self.problems))


def query_int(name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer") from None
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"{name} must be between {minimum} and {maximum}")
    return value


def query_choice(name: str, choices: set[str] | frozenset[str]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(sorted(choices))}")
    return raw


def query_str(name: str, *, max_length: int = 64) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length:
        raise ValidationFailed(f"{name} is too long (at most {max_length} characters)")
    return raw
