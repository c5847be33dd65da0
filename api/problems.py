"""Every error as ``application/problem+json`` (RFC 9457): a status, its title and a sentence.

Pipeline errors map by kind (unknown id 404, a transition the state forbids 409, an upload over
the limit 413, other bad input 422); a database that is unreachable or busy right now is a 503 with
Retry-After (PostgreSQL restarting passes; a client should try again, not give up); FastAPI's
validation errors name the field; Starlette's own errors (404/405, bad multipart, a Range it cannot
satisfy) are rewritten so that no answer of this API is ever plain text or HTML.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import db
from pipeline.errors import BadInput, DuplicateSource, NotAllowed, NotFound, PipelineError, TooLarge

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 5


class Problem(Exception):
    """An error the API itself raises (bad key, throttled, malformed request)."""

    def __init__(self, status: int, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers or {}, extra


def response(status: int, detail: str, instance: str | None = None, headers: dict | None = None,
             **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: PipelineError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (NotAllowed, DuplicateSource)):
        return 409
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, BadInput):
        return 422
    return 500


def _field(loc: tuple) -> str:
    """``("body", "max_clips")`` -> ``max_clips``; ``("query", "limit")`` -> ``limit (query)``."""
    where, *path = loc
    name = ".".join(str(p) for p in path) or where
    return name if where == "body" else f"{name} ({where})"


def _validation_sentence(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        if error["type"] == "extra_forbidden":
            parts.append(f"{_field(tuple(error['loc']))}: unknown option")
        elif error["type"] == "json_invalid":
            parts.append("the body is not valid JSON")
        else:
            parts.append(f"{_field(tuple(error['loc']))}: {error['msg']}")
    return "Invalid request: " + "; ".join(parts) + "."


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return response(exc.status, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(PipelineError)
    async def _pipeline(request: Request, exc: PipelineError):
        extra = {"duplicate_of": exc.episode_id} if isinstance(exc, DuplicateSource) else {}
        return response(status_of(exc), str(exc), request.url.path, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        status = 400 if any(e["type"] == "json_invalid" for e in exc.errors()) else 422
        return response(status, _validation_sentence(list(exc.errors())), request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != HTTPStatus(exc.status_code).phrase \
            else _default_detail(exc.status_code, request)
        return response(exc.status_code, detail, request.url.path, dict(exc.headers or {}))

    async def _database(request: Request, exc: Exception):
        if not db.is_transient(exc):
            raise exc   # a bug, not an outage: the server's 500
        return response(503, f"The database is unreachable or busy right now ({db.error_line(exc)});"
                             " try again in a few seconds.", request.url.path, {"Retry-After": str(RETRY_AFTER_S)})

    for database_error in db.DatabaseError:   # a PostgreSQL restart or a network cut: 503, not a stack trace
        app.add_exception_handler(database_error, _database)
    app.add_middleware(PlainErrorsToProblems)


def _default_detail(status: int, request: Request) -> str:
    if status == 404:
        return f"There is no endpoint {request.url.path}; see /docs for the endpoints."
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}."
    return HTTPStatus(status).description or HTTPStatus(status).phrase


class PlainErrorsToProblems:
    """ASGI middleware: an error answer that is not problem+json yet (say Starlette's 416 for a
    Range beyond the file) is rewritten into one; its headers (Content-Range...) are kept."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict = {}

        async def rewrite(message):
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if message["status"] >= 400 and not content_type.startswith(MEDIA_TYPE.encode()):
                    held["start"] = message
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                held["body"] = held.get("body", b"") + message.get("body", b"")
                if message.get("more_body"):
                    return
                start = held.pop("start")
                status = start["status"]
                detail = _plain_detail(status, start, held.pop("body").decode("utf-8", "replace").strip())
                body = json.dumps({"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                                   "detail": detail, "instance": scope["path"]}).encode()
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() not in (b"content-type", b"content-length")]
                headers += [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, rewrite)


def _plain_detail(status: int, start: dict, text: str) -> str:
    headers = dict(start.get("headers", []))
    if status == 416:
        size = headers.get(b"content-range", b"bytes */?").decode().rsplit("/", 1)[-1]
        return f"The Range asked for is not inside the file ({size} bytes); ask for bytes 0-{int(size) - 1}."
    if status == 400 and text and len(text) < 300:   # Starlette's reason, e.g. "Malformed range header."
        return f"{text.rstrip('.')}: a Range header looks like 'bytes=0-1023'." if "range" in text.lower() else text
    return HTTPStatus(status).description or HTTPStatus(status).phrase
