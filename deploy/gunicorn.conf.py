"""gunicorn settings for cloudmgr's web app (deploy/systemd/cloudmgr-web.service).

    gunicorn --config deploy/gunicorn.conf.py 'web:create_app()'

Every value can be overridden on the command line or with the GUNICORN_CMD_ARGS variable.
The scheduler is NOT run here: it is its own service (`cloudmgr scheduler run`).
"""

import os

bind = os.environ.get("CLOUDMGR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CLOUDMGR_WEB_WORKERS", "2"))
# Two threads a worker: the app is CPU-bound Python, so more threads only fight over the GIL
# (benchmarks/list_latency.py: p95 36-39 ms at 250 req/s on 2 cores with 1 or 2 threads, 94 ms
# with 4).  Scale with workers (about one per core), not threads.
threads = int(os.environ.get("CLOUDMGR_WEB_THREADS", "2"))
worker_class = "gthread"
# Slow clouds are never waited for in a web request (side effects run in the scheduler),
# so a request that takes this long is stuck: gunicorn replaces the worker.
timeout = 60
graceful_timeout = 20
keepalive = 5
# A worker is recycled after this many requests (with jitter): bounds slow leaks.  Not fewer:
# at 250 req/s, 5000 restarted a worker every 40 s (an app start, cold caches, one worker left).
max_requests = 200000
max_requests_jitter = 20000
# No gunicorn access log: the app logs every request itself, as JSON with its request id and
# duration (web/core/observability.py).
accesslog = None
errorlog = "-"
# Behind a reverse proxy (nginx) on the same host: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("CLOUDMGR_FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "cloudmgr-web"
