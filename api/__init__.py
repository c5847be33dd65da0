"""The HTTP API shell (issue 15): FastAPI served by uvicorn (``python -m pipeline api``).

Thin like the dashboard and the CLI: each route calls the same ``pipeline`` function they call
(``pipeline.jobs``, ``pipeline.library.*``, ``pipeline.ops.*``) and only turns HTTP into
arguments and answers into JSON. ``api.app:create_app`` is the uvicorn factory.
"""
