"""Container healthcheck for workers: exits 0 when Redis answers and a worker of this host is registered."""
from __future__ import annotations

import socket
import sys

from rq import Worker

from core.queues import connect
from core.settings import get_settings


def main() -> int:
    settings = get_settings()
    try:
        client = connect(settings.redis_url)
        hostname = socket.gethostname()
        return 0 if any(w.hostname == hostname for w in Worker.all(connection=client)) else 1
    except Exception as exc:  # any failure means unhealthy
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
