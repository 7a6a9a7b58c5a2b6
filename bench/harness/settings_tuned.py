"""``make bench BENCH_ARGS=--variant tuned``: Parley's settings plus the two changes the profile
asks for (see docs/performance.md, "Findings"), so their effect can be measured before they are
made in ``config/settings.py``:

* a psycopg connection pool (Django 5.1+) instead of a connection per request thread — under ASGI
  each request runs on a new thread, so persistent connections leak (PostgreSQL hits "too many
  clients") and non-persistent ones cost a connect per request;
* ``CELERY_TASK_IGNORE_RESULT`` — results are disabled anyway, and without it every publish from a
  fresh request thread builds a result backend, which scans every installed package's entry points.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 2,
    "max_size": int(os.environ.get("BENCH_DB_POOL_MAX", "16")),
    "timeout": 10,
}
CELERY_TASK_IGNORE_RESULT = True
