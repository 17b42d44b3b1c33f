"""Logging in and out, and the language switch."""

from __future__ import annotations

from web.auth import views  # noqa: F401  (registers the routes)
from web.auth.blueprint import bp

__all__ = ["bp"]
