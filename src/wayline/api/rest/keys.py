"""``/api/v1/api-keys``: the workspace's secret API keys (the secret is shown once, on creation)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from wayline.api.rest.deps import Page, Paging, Workspace
from wayline.storage.accounts import Accounts, ApiKeyInfo

router = APIRouter(prefix="/api-keys", tags=["API keys"])


class ApiKeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=k.id,
            name=k.name,
            created_at=k.created_at,
            last_used_at=k.last_used_at,
            revoked_at=k.revoked_at,
        )


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="What the key is for.")


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key. Shown only now: store it safely.")


@router.get("", response_model=Page[ApiKeyOut])
def list_keys(ctx: Workspace, paging: Paging) -> Page[ApiKeyOut]:
    keys = Accounts(ctx.db).list_api_keys(ctx.workspace_id)
    items = [ApiKeyOut.of(k) for k in keys[paging.offset : paging.offset + paging.limit]]
    return Page[ApiKeyOut].of(items, len(keys), paging)


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_key(ctx: Workspace, body: ApiKeyCreate) -> ApiKeyCreated:
    info, key = Accounts(ctx.db).create_api_key(ctx.workspace_id, body.name)
    return ApiKeyCreated(**ApiKeyOut.of(info).model_dump(), key=key)


@router.delete("/{key_id}", status_code=204)
def revoke_key(ctx: Workspace, key_id: str) -> None:
    Accounts(ctx.db).revoke_api_key(ctx.workspace_id, key_id)
