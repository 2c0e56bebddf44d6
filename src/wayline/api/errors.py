"""Wayline's errors as HTTP responses, mapped in one place.

    InputError       → 400  (Segment answers 400 to a body or event over the size limit too,
    PayloadTooLarge  → 400   and Segment's clients treat 413 and 400 alike: do not retry)
    AuthError        → 401
    Forbidden        → 403
    NotFound         → 404
    Conflict         → 409
    a request that does not match the REST API's schema → 422, naming the field
    ConfigError      → 500
    Busy             → 503, with Retry-After

The body is JSON with ``code`` and ``message`` (the fields Segment's clients read) and, for bad
input, where: ``index`` (the message's position in a batch) and ``field``. A browser asking for
a dashboard page (``Accept: text/html``, outside ``/api/`` and ``/v1/``) gets the same error as
a page instead, when the dashboard has registered its renderer (``app.state.html_error_page``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from wayline.errors import (
    AuthError,
    Busy,
    ConfigError,
    Conflict,
    Forbidden,
    InputError,
    NotFound,
    PayloadTooLarge,
)


def error_body(exc: Exception) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one of Wayline's errors."""
    if isinstance(exc, PayloadTooLarge):
        status, code = 400, "payload_too_large"
    elif isinstance(exc, InputError):
        status, code = 400, "invalid_request"
    elif isinstance(exc, Forbidden):
        status, code = 403, "forbidden"
    elif isinstance(exc, AuthError):
        status, code = 401, "unauthorized"
    elif isinstance(exc, NotFound):
        status, code = 404, "not_found"
    elif isinstance(exc, Conflict):
        status, code = 409, "conflict"
    elif isinstance(exc, Busy):
        status, code = 503, "busy"
    elif isinstance(exc, ConfigError):
        status, code = 500, "server_misconfigured"
    else:
        status, code = 500, "internal_error"
    body: dict[str, Any] = {"success": False, "code": code, "message": str(exc)}
    if isinstance(exc, InputError):
        if exc.row is not None:
            body["index"] = exc.row
        if exc.field is not None:
            body["field"] = exc.field
    return status, body


def json_error(exc: Exception, *, any_origin: bool = False) -> Response:
    """The JSON error response; ``any_origin`` lets browsers on any site read it (CORS)."""
    status, body = error_body(exc)
    headers = {"Access-Control-Allow-Origin": "*"} if any_origin else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="wayline"'
    elif status == 503:
        headers["Retry-After"] = "1"
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


_API_PREFIXES = ("/api/", "/v1/")


def _html_page(request: Request) -> Callable[[Request, int, str], Response] | None:
    """The dashboard's error page renderer, if this request is a browser's for a page."""
    render = getattr(request.app.state, "html_error_page", None)
    if render is None or request.url.path.startswith(_API_PREFIXES):
        return None
    return render if "text/html" in request.headers.get("accept", "") else None


def install_error_handlers(app: FastAPI) -> None:
    """Make every route answer Wayline's errors the same way."""

    async def handle(request: Request, exc: Exception) -> Response:
        render = _html_page(request)
        if render is not None:
            status, body = error_body(exc)
            return render(request, status, body["message"])
        # The tracking API (/v1/…) is called by browser SDKs from the shop's own site.
        return json_error(exc, any_origin=request.url.path.startswith("/v1/"))

    async def http_error(request: Request, exc: Exception) -> Response:
        # Routing's own errors (an unknown address, a wrong method).
        assert isinstance(exc, HTTPException)
        render = _html_page(request)
        if render is not None:
            return render(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        # FastAPI's own 422 lists pydantic's errors; ours names the first field at fault in
        # the same shape as every other error, and keeps the full list for programs.
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        body = {
            "success": False,
            "code": "invalid_request",
            "message": f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request",
            "field": where or None,
            "errors": [
                {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                for e in errors
            ],
        }
        return Response(orjson.dumps(body, default=str), 422, media_type="application/json")

    for exc_type in (InputError, AuthError, NotFound, ConfigError, Conflict, Busy):
        app.add_exception_handler(exc_type, handle)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
