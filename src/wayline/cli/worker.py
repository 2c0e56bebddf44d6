"""``wayline worker``: run the journey runtime on its own, against the operational store.

With PostgreSQL (``WAYLINE_DATABASE_URL``) start as many workers as the load needs, on as many
machines: they share the queued events, due timers and the outbox through ``FOR UPDATE SKIP
LOCKED`` and need nothing else to coordinate. Killing one (even with SIGKILL) loses nothing:
its transaction rolls back and the others take the work over (a send it had claimed, once the
lease runs out). ``wayline serve`` runs the same runtime in-process, which is what SQLite wants.

Until channels are configured per workspace (the dashboard), messages are kept by the ``log``
channel in the database (table ``journey_messages``); nothing is sent out.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from wayline.channels.templates.library import TemplateLibrary, workspace_templates_dir
from wayline.channels.tracking import LinkSigner
from wayline.cli import app
from wayline.config import Settings
from wayline.journeys.policies import DEFAULT_POLICY, PERMISSIVE_POLICY
from wayline.journeys.runtime import ChannelRegistry, JourneyRuntime, RecordingChannel
from wayline.journeys.runtime.providers import WorkspacePolicies, WorkspaceProviders
from wayline.journeys.runtime.render import TemplateRenderer
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.db import Database
from wayline.storage.secretbox import SecretBox, tracking_secret

console = Console()
log = logging.getLogger(__name__)


class SendPolicyName(StrEnum):
    DEFAULT = "default"
    NONE = "none"


def build_runtime(
    db: Database,
    settings: Settings,
    *,
    policy: SendPolicyName = SendPolicyName.DEFAULT,
    record_to: str | None = None,
    batch_size: int = 500,
    lease_seconds: float = 60.0,
    render: bool = True,
) -> JourneyRuntime:
    """The runtime as ``serve`` and ``worker`` run it."""
    channels: dict[str, Any] = {}
    if record_to:
        recorder = RecordingChannel(record_to)
        channels = {name: recorder for name in ("email", "sms", "whatsapp", "webhook")}
    signer = LinkSigner(
        base_url=os.environ.get("WAYLINE_PUBLIC_URL", "http://127.0.0.1:8000"),
        secret=tracking_secret(settings),
    )
    return JourneyRuntime(
        db,
        channels=ChannelRegistry(
            channels,
            resolve=WorkspaceProviders(ChannelConfigStore(db, SecretBox.for_settings(settings))),
        ),
        policy=DEFAULT_POLICY if policy is SendPolicyName.DEFAULT else PERMISSIVE_POLICY,
        # A workspace's own sending rules (dashboard settings) replace the default ones.
        policy_for=WorkspacePolicies(db) if policy is SendPolicyName.DEFAULT else None,
        renderer=TemplateRenderer(
            lambda ws: TemplateLibrary(workspace_templates_dir(settings.home, ws)), signer
        )
        if render
        else None,
        batch_size=batch_size,
        lease=timedelta(seconds=lease_seconds),
    )


@app.command()
def worker(
    batch_size: Annotated[
        int, typer.Option(min=1, help="Events, timers or sends per batch.")
    ] = 500,
    lease_seconds: Annotated[
        float, typer.Option(min=0.1, help="How long a claimed send is left to this worker.")
    ] = 60.0,
    send_policy: Annotated[
        SendPolicyName,
        typer.Option(help="'none' turns off consent, caps and quiet hours (tests, benchmarks)."),
    ] = SendPolicyName.DEFAULT,
    record_to: Annotated[
        str | None,
        typer.Option(hidden=True, help="Send to a recording channel in this database (tests)."),
    ] = None,
    render: Annotated[
        bool, typer.Option(hidden=True, help="Render templates (off: benchmarks of the loop).")
    ] = True,
) -> None:
    """Run the journey runtime (events → journeys → messages) until stopped."""
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    db = Database.open(settings)
    runtime = build_runtime(
        db,
        settings,
        policy=send_policy,
        record_to=record_to,
        batch_size=batch_size,
        lease_seconds=lease_seconds,
        render=render,
    )
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"Wayline journey worker on {db.dialect} (pid {os.getpid()})")
    try:
        runtime.run_forever(stop)
    finally:
        db.close()
        console.print("Worker stopped.")
