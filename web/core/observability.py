"""``/metrics`` (Prometheus), ``/healthz``, ``/readyz``, the request id and the latency histogram.

``/metrics`` is served to Prometheus only (its bearer token or an allowed address, decided in
``cloudmgr.metrics_access``): it shows every department's quota and usage, so a login is not enough.

Every request is observed in ``cloudmgr_http_request_seconds`` labelled with the
method, the Flask endpoint name (``portal.home``, ``api.clouds`` …, ``unmatched`` for
404s: never the raw path, so the label set stays bounded) and the status code.

Every request has an id: the caller's ``X-Request-ID`` when it is a sane token, otherwise a
new one; it is returned in the ``X-Request-ID`` header and carried by every log line written
while the request runs (``cloudmgr.logformat``).

``/healthz`` says the process answers.  ``/readyz`` says whether it can do its work: the
database answers, a scheduler leader holds a fresh lease, and every enabled cloud answers
through its provider within ``CLOUD_TIMEOUT_SECONDS``; 200 when all hold, 503 otherwise.  The
answer is cached for ``READY_CACHE_SECONDS`` so probes and scrapes never pile up on the clouds.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select, text

from cloudmgr import metrics, metrics_access, metrics_exposition
from cloudmgr.db import utcnow
from cloudmgr.logformat import request_id_var
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from cloudmgr.workqueue.models import Lease

bp = Blueprint("system", __name__)
log = logging.getLogger("cloudmgr.web.access")

_STARTED = "_cloudmgr_request_started"
_RID_CONTEXT = "_cloudmgr_request_id_context"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

LEADER_LEASE = "scheduler"  # cloudmgr.scheduler.service.LEADER_LEASE
CLOUD_TIMEOUT_SECONDS = 3.0
READY_CACHE_SECONDS = 5.0


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    rt: Runtime = current_app.extensions["cloudmgr"]
    try:
        metrics_access.check_scrape(
            rt.settings,
            remote_addr=request.remote_addr,
            authorization=request.headers.get("Authorization"),
            headers=request.headers,
        )
    except metrics_access.ScrapeRefused as exc:
        # Plain text for Prometheus (it shows the body in its targets page), never the metrics.
        refused = Response(exc.message + "\n", status=exc.http_status, mimetype="text/plain")
        if isinstance(exc, metrics_access.ScrapeUnauthorized):
            refused.headers["WWW-Authenticate"] = 'Bearer realm="cloudmgr-metrics"'
        return refused
    return Response(metrics_exposition.render(rt.db, rt.settings), mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.record_once
def _say_why_metrics_refuse_everyone(state: BlueprintSetupState) -> None:
    rt: Runtime | None = state.app.extensions.get("cloudmgr")
    why = metrics_access.misconfiguration(rt.settings) if rt is not None else None
    if why:
        metrics_access.log.warning(why)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


# --- /readyz ------------------------------------------------------------------------------


@dataclass
class _Cached:
    at: float
    body: dict[str, Any]
    ready: bool


_cache_lock = threading.Lock()
_cloud_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def _check_database(rt: Runtime) -> tuple[dict[str, Any], list[tuple[str, str, str | None]], Lease | None]:
    """The database check, and what the other checks need from it (clouds, the leader lease)."""
    started = time.perf_counter()
    try:
        with rt.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        with rt.db.session_factory() as session:
            clouds = [(c.key, c.os_cloud, c.region) for c in session.scalars(select(Cloud).where(Cloud.enabled))]
            lease = session.get(Lease, LEADER_LEASE)
            if lease is not None:
                session.expunge(lease)
    except Exception as exc:  # any driver error means "not reachable"
        return {"ok": False, "error": type(exc).__name__}, [], None
    return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}, clouds, lease


def _check_scheduler(lease: Lease | None, database_ok: bool) -> dict[str, Any]:
    if not database_ok:
        return {"ok": False, "error": "database unreachable"}
    if lease is None:
        return {"ok": False, "error": "no scheduler has ever held the leader lease"}
    fresh = lease.expires_at > utcnow()
    answer: dict[str, Any] = {"ok": fresh, "leader": lease.holder, "lease_expires_at": lease.expires_at.isoformat()}
    if not fresh:
        answer["error"] = "the leader lease has expired: no scheduler is leading"
    return answer


def _ping_cloud(rt: Runtime, key: str, os_cloud: str, region: str | None) -> int:
    provider = rt.providers.for_cloud(key, os_cloud, region)
    return len(provider.list_flavors())


def _check_clouds(rt: Runtime, clouds: list[tuple[str, str, str | None]]) -> dict[str, dict[str, Any]]:
    """Each enabled cloud through its provider; clouds sharing an endpoint are asked once."""
    endpoints: dict[tuple[str, str | None], str] = {}
    for key, os_cloud, region in clouds:
        endpoints.setdefault((os_cloud, region), key)
    futures = {
        endpoint: _cloud_pool.submit(_ping_cloud, rt, key, endpoint[0], endpoint[1])
        for endpoint, key in endpoints.items()
    }
    deadline = time.monotonic() + CLOUD_TIMEOUT_SECONDS
    results: dict[tuple[str, str | None], dict[str, Any]] = {}
    for endpoint, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            results[endpoint] = {"ok": True}
        except FutureTimeout:
            results[endpoint] = {"ok": False, "error": f"no answer within {CLOUD_TIMEOUT_SECONDS:g} s"}
        except Exception as exc:  # the provider's CloudError or a connection error
            results[endpoint] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {key: results[(os_cloud, region)] for key, os_cloud, region in clouds}


def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    database, clouds, lease = _check_database(rt)
    scheduler = _check_scheduler(lease, database["ok"])
    cloud_checks = _check_clouds(rt, clouds)
    ready = database["ok"] and scheduler["ok"] and all(c["ok"] for c in cloud_checks.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checked_at": utcnow().isoformat(),
        "checks": {"database": database, "scheduler": scheduler, "clouds": cloud_checks},
    }
    return ready, body


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    rt: Runtime = current_app.extensions["cloudmgr"]
    cache: dict[int, _Cached] = current_app.extensions.setdefault("cloudmgr_readyz", {})
    now = time.monotonic()
    with _cache_lock:
        cached = cache.get(id(rt))
        if cached is None or now - cached.at > READY_CACHE_SECONDS:
            ready, body = readiness(rt)
            cached = _Cached(now, body, ready)
            cache[id(rt)] = cached
    return jsonify(cached.body), 200 if cached.ready else 503


# --- request id, access log and latency ----------------------------------------------------


def _request_id() -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


def _start_request() -> None:
    setattr(g, _STARTED, time.perf_counter())
    rid = _request_id()
    g.request_id = rid
    setattr(g, _RID_CONTEXT, request_id_var.set(rid))


def _observe(response: Response) -> Response:
    started: float | None = g.get(_STARTED)
    endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
    rid = g.get("request_id")
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    if started is not None:
        seconds = time.perf_counter() - started
        metrics.HTTP_REQUEST_SECONDS.labels(
            method=request.method, endpoint=endpoint, status=str(response.status_code)
        ).observe(seconds)
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "endpoint": endpoint,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
    return response


def _end_request(_exc: BaseException | None) -> None:
    token: Token[str | None] | None = g.pop(_RID_CONTEXT, None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (e.g. a streamed response): just clear it
            request_id_var.set(None)


def init_timing(app: Flask) -> None:
    """Register first so the timer starts before, and stops after, everything else."""
    app.before_request(_start_request)
    app.after_request(_observe)
    app.teardown_request(_end_request)
