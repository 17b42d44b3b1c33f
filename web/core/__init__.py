"""The app's infrastructure, under every blueprint: sessions and roles (``security``), one unit of
work per request (``uow``), error answers (``errors``), languages (``i18n``), the request id,
access log and ``/metrics`` (``observability``), the trusted proxies (``proxy``), the Flask
extensions.  No pages and no domain views: it imports ``cloudmgr`` and nothing else of ``web``.
"""
