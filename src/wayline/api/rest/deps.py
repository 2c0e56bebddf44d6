"""What every REST API route needs: the caller's workspace, and pagination.

Every route takes a :class:`WorkspaceContext` through :func:`workspace_context`; it comes from
the secret API key in ``Authorization: Bearer wl_sk_…`` — or, for the dashboard's own pages
calling the API from the browser, from a logged-in session cookie (state-changing requests then
also need the ``X-CSRF-Token`` header). Routes read and write only ``ctx.workspace_id``'s data:
there is no parameter naming a workspace, so a key can never reach another workspace's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from wayline.config import Settings
from wayline.errors import AuthError, Forbidden
from wayline.storage.accounts import Accounts
from wayline.storage.db import Database

SESSION_COOKIE = "wayline_session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WorkspaceContext:
    workspace_id: str
    db: Database
    settings: Settings


def workspace_context(request: Request) -> WorkspaceContext:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    accounts = Accounts(db)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthError("expected 'Authorization: Bearer <secret API key>'")
        return WorkspaceContext(accounts.workspace_of_api_key(key.strip()), db, settings)
    token = request.cookies.get(SESSION_COOKIE)
    session = accounts.session(token) if token else None
    if session is None:
        raise AuthError("a secret API key is required ('Authorization: Bearer wl_sk_…')")
    if request.method not in _SAFE_METHODS and request.headers.get("x-csrf-token") != (
        session.csrf_token
    ):
        raise Forbidden("missing or wrong X-CSRF-Token header")
    return WorkspaceContext(session.workspace_id, db, settings)


Workspace = Annotated[WorkspaceContext, Depends(workspace_context)]
"""Type of a route parameter that receives the caller's workspace."""

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


Paging = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, the ``total`` count, and where the next page starts."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None

    @classmethod
    def of(cls, items: list[T], total: int, paging: PageParams) -> Page[T]:
        end = paging.offset + len(items)
        return cls(
            items=items,
            total=total,
            limit=paging.limit,
            offset=paging.offset,
            next_offset=end if end < total else None,
        )
