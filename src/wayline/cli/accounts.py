"""``wayline users`` and ``wayline api-keys``: dashboard accounts and secret REST API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from wayline.cli import app
from wayline.config import Settings
from wayline.storage.accounts import Accounts
from wayline.storage.db import Database

console = Console()
users_app = typer.Typer(help="Dashboard accounts (log-in e-mail and password).")
keys_app = typer.Typer(help="Secret API keys for the REST API (/api/v1).")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="api-keys")

WorkspaceOpt = Annotated[str, typer.Option(help="The workspace (see `wayline workspaces list`).")]


def _open() -> Database:
    db = Database.open(Settings())
    db.ensure_default_workspace()
    return db


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The log-in e-mail.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    workspace: WorkspaceOpt = "default",
) -> None:
    """Create a dashboard account for a workspace."""
    with _open() as db:
        Accounts(db).create_user(workspace, email, password)
    console.print(f"Account [bold]{email.strip().lower()}[/] created for workspace {workspace}.")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'agency reporting'.")],
    workspace: WorkspaceOpt = "default",
) -> None:
    """Create a secret API key and print it (shown only once)."""
    with _open() as db:
        info, key = Accounts(db).create_api_key(workspace, name)
    console.print(
        Panel.fit(
            f"[bold green]{key}[/]\n\nSend it as 'Authorization: Bearer <key>' to /api/v1/…\n"
            "It is shown only now: store it in a secret manager.",
            title=f"API key {info.id} ({name}) for workspace {workspace}",
        )
    )


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = "default") -> None:
    """List a workspace's API keys (never their secrets)."""
    with _open() as db:
        keys = Accounts(db).list_api_keys(workspace)
    table = Table("id", "name", "created", "last used", "status")
    for k in keys:
        table.add_row(
            k.id,
            k.name,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "—",
            "revoked" if k.revoked_at else "active",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `wayline api-keys list`).")],
    workspace: WorkspaceOpt = "default",
) -> None:
    """Revoke an API key: it stops working at once."""
    with _open() as db:
        Accounts(db).revoke_api_key(workspace, key_id)
    console.print(f"API key {key_id} revoked.")
