"""``/metrics`` (Prometheus), ``/healthz`` and the per-request latency histogram.

Every request is observed in ``cloudmgr_http_request_seconds`` labelled with the
method, the Flask endpoint name (``portal.home``, ``api.clouds`` …, ``unmatched`` for
404s: never the raw path, so the label set stays bounded) and the status code.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, jsonify, request

from cloudmgr import metrics

bp = Blueprint("system", __name__)

_STARTED = "_cloudmgr_request_started"


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def _start_timer() -> None:
    setattr(g, _STARTED, time.perf_counter())


def _observe(response: Response) -> Response:
    started: float | None = g.get(_STARTED)
    if started is not None:
        endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
        metrics.HTTP_REQUEST_SECONDS.labels(
            method=request.method, endpoint=endpoint, status=str(response.status_code)
        ).observe(time.perf_counter() - started)
    return response


def init_timing(app: Flask) -> None:
    """Register first so the timer starts before, and stops after, everything else."""
    app.before_request(_start_timer)
    app.after_request(_observe)
