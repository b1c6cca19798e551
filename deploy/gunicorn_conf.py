"""gunicorn settings for batchsync: `gunicorn --config deploy/gunicorn_conf.py` (docs/deploy.md).

GUNICORN_BIND is where to listen [`127.0.0.1:8000`, or `0.0.0.0:$PORT` when PORT is set, as on
a PaaS]; gunicorn itself reads WEB_CONCURRENCY (worker processes) and FORWARDED_ALLOW_IPS (the
proxies whose X-Forwarded-Proto it trusts [127.0.0.1,::1]).
"""

from __future__ import annotations

import os

wsgi_app = "syncproject.wsgi:application"
_default_bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
bind = os.environ.get("GUNICORN_BIND", _default_bind).split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Requests are short (a job is started, followed and controlled here; the days load in qcluster).
timeout = 30
graceful_timeout = 30
accesslog = "-"
