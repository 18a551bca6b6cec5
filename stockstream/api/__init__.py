"""The query API and live dashboard (``stockstream serve``): FastAPI over the Redis views, read-only.

``app.create_app`` assembles the parts: ``routes`` (views endpoints), ``live`` (SSE relay of
the materializer's and notifier's Redis pub/sub), ``middleware`` (security headers, request
metrics), ``health``; the page itself lives in ``stockstream/dashboard/static``.
"""
