"""The ``auth`` blueprint (/), in its own module: the views import it from here and the
package imports the views, so neither imports the other back."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", "web.auth")
