"""Dashboard log-in: local accounts, a session cookie, and CSRF tokens on every form.

- The first visit to a data folder with no account shows ``/setup``: the store owner creates
  the first account (for the default workspace). After that, ``/setup`` is gone; more accounts
  come from ``wayline users create``.
- Logging in sets an HttpOnly, SameSite=Lax cookie holding a random token (only its hash is
  stored, see :mod:`wayline.storage.accounts`); pages depend on :data:`Session`, which sends a
  visitor without a live session to ``/login`` and back afterwards.
- Every state-changing form posts the session's CSRF token (``csrf_token`` field, or the
  ``X-CSRF-Token`` header for the dashboard's scripts); :func:`check_csrf` refuses anything else
  with a 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from wayline.api.rest.deps import SESSION_COOKIE
from wayline.errors import AuthError, Forbidden, InputError
from wayline.storage.accounts import SESSION_LIFETIME, Accounts, WebSession
from wayline.storage.db import Database
from wayline.storage.workspace_models import UserRow
from wayline.web.render import page

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by :func:`dashboard_session`; answered with a redirect to the log-in page."""


def install(app: FastAPI) -> None:
    async def to_login(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def dashboard_session(request: Request) -> WebSession:
    token = request.cookies.get(SESSION_COOKIE)
    session = Accounts(_db(request)).session(token) if token else None
    if session is None:
        raise LoginRequired
    return session


Session = Annotated[WebSession, Depends(dashboard_session)]
"""Type of a page parameter that receives the logged-in session (or redirects to log in)."""


async def check_csrf(request: Request, session: WebSession) -> None:
    """Refuse a state-changing request that does not carry the session's CSRF token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if sent is None or not hmac.compare_digest(sent, session.csrf_token):
        raise Forbidden("this form expired or did not come from this dashboard; reload the page")


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" or "https://…" would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/map"


def _no_users(db: Database) -> bool:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(UserRow)).scalar_one()) == 0


def _logged_in(request: Request, token: str, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/setup" if _no_users(_db(request)) else "/map", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/map") -> Response:
    if _no_users(_db(request)):
        return RedirectResponse("/setup", status_code=303)
    return page(request, "login.html", None, title="Log in", next=_safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/map",
) -> Response:
    # No CSRF token yet (no session); SameSite=Lax cookies and a fresh session per log-in
    # keep a forged log-in form from doing more than logging the visitor into their own store.
    try:
        token, _ = Accounts(_db(request)).log_in(email, password)
    except AuthError as exc:
        return page(
            request,
            "login.html",
            None,
            title="Log in",
            next=_safe_next(next),
            error=str(exc),
            email=email,
            status_code=401,
        )
    return _logged_in(request, token, next)


@router.get("/setup")
def setup_form(request: Request) -> Response:
    if not _no_users(_db(request)):
        return RedirectResponse("/login", status_code=303)
    return page(request, "setup.html", None, title="Welcome to Wayline", error=None)


@router.post("/setup")
def setup(
    request: Request,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    db = _db(request)
    if not _no_users(db):
        return RedirectResponse("/login", status_code=303)
    workspace_id, _, _ = db.ensure_default_workspace()
    accounts = Accounts(db)
    try:
        accounts.create_user(workspace_id, email, password)
    except InputError as exc:
        return page(
            request,
            "setup.html",
            None,
            title="Welcome to Wayline",
            error=str(exc),
            email=email,
            status_code=400,
        )
    token, _ = accounts.log_in(email, password)
    return _logged_in(request, token, "/map")


@router.post("/logout")
async def logout(request: Request, session: Session) -> Response:
    await check_csrf(request, session)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        Accounts(_db(request)).log_out(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
