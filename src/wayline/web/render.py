"""Rendering a dashboard page: the shared layout, navigation and template environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from wayline.storage.accounts import WebSession

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: The navigation bar: (path, label). Pages add themselves here in the order users meet them.
NAV: list[tuple[str, str]] = [
    ("/map", "Journey map"),
    ("/funnels", "Funnels"),
    ("/paths", "Paths"),
    ("/retention", "Retention"),
    ("/journeys", "Journeys"),
    ("/customers", "Customers"),
    ("/data", "Data"),
    ("/settings", "Settings"),
]


def page(
    request: Request,
    template: str,
    session: WebSession | None,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page in the layout: ``template`` extends ``base.html`` and fills its ``main`` block."""
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf_token": session.csrf_token if session else "",
            "title": title,
            "nav": NAV,
            "current": request.url.path,
            **context,
        },
        status_code=status_code,
    )


_ERROR_TITLES = {
    400: "That did not work",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "That clashes with something",
    503: "Busy — try again in a moment",
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page in the layout, for a browser (the APIs answer JSON)."""
    return page(
        request,
        "error.html",
        None,
        title=_ERROR_TITLES.get(status, "Something went wrong"),
        status_code=status,
        status=status,
        message=message,
    )
