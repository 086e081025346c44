"""`holds worker --check`: ask one worker, by its metrics port, whether it is healthy.

arq's own health key is one per queue, so any live worker would make it pass; each worker
instead serves its own record at `/healthz` beside `/metrics` (workers/main.py). This module
imports only the standard library, as a container runs it every few seconds.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def check(host: str, port: int) -> int:
    """0 when the worker whose endpoint is on `port` of `host` is healthy; 1 when it is not or
    nothing answers there."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # a worker listening on every address answers on loopback
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}", flush=True)
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: no worker answers on {url} ({exc})", flush=True)
        return 1
    print(f"healthy: worker {body.get('pid')} on {url}", flush=True)
    return 0
