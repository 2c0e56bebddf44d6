"""``wayline templates …``: the message template library.

    wayline templates list
    wayline templates preview NAME [--customer ID] [--var KEY=VALUE]...
                              [--channel email|sms|whatsapp]
                              [--html FILE]
    wayline templates validate [NAME]...
    wayline templates copy NAME

``preview`` renders with sample data, or with a real customer's profile (their ``identify``
traits) and their latest matching event (a viewed product, a cart, an order) from the analytics
store. ``--var`` overrides one value: ``discount_percent=20`` (a template parameter),
``customer.first_name=Jo``, ``store.name=…``, ``event.properties.total=12.50``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wayline.channels.templates import Template, TemplateLibrary
from wayline.channels.templates.context import (
    SAMPLE_CUSTOMER,
    SAMPLE_EVENTS,
    SAMPLE_JOURNEY,
    SAMPLE_STORE,
)
from wayline.cli import app
from wayline.config import Settings
from wayline.errors import InputError, NotFound

templates_app = typer.Typer(
    name="templates",
    help="Message templates: list, preview, validate, copy to edit.",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")
console = Console()

#: Segment e-commerce events that can fill each trigger's context, most telling first.
TRIGGER_EVENTS: dict[str, tuple[str, ...]] = {
    "product": ("Product Viewed", "Product Added", "Product Clicked"),
    "cart": ("Checkout Started", "Cart Viewed", "Product Added"),
    "order": ("Order Completed", "Order Delivered"),
}


def _library() -> TemplateLibrary:
    return TemplateLibrary(Settings().home / "templates")


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _parse_value(text: str) -> Any:
    """``20`` → 20, ``true`` → True, ``"x"`` → x; anything not JSON stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _customer_from_store(customer_id: str, trigger: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profile, latest matching event) of a customer in the analytics store."""
    from wayline.storage.eventstore import EventStore

    path = Settings().resolved_analytics_path
    if not path.exists():
        raise NotFound(
            f"no analytics store at {path}: import events or run the demo first, "
            "or preview without --customer (sample data)"
        )
    with EventStore(path, read_only=True) as store:
        rows = store.con.execute(
            "SELECT traits FROM events WHERE person_id = ? AND type = 'identify' "
            "ORDER BY timestamp",
            [customer_id],
        ).fetchall()
        seen = store.con.execute(
            "SELECT count(*) FROM events WHERE person_id = ?", [customer_id]
        ).fetchone()
        if not seen or not seen[0]:
            raise NotFound(f"no customer '{customer_id}' in {path}")
        event: dict[str, Any] = {}
        names = TRIGGER_EVENTS.get(trigger)
        if names:
            placeholders = ", ".join("?" for _ in names)
            found = store.con.execute(
                f"SELECT event, properties, timestamp FROM events WHERE person_id = ? "
                f"AND event IN ({placeholders}) ORDER BY timestamp DESC LIMIT 1",
                [customer_id, *names],
            ).fetchone()
            if found is None:
                raise NotFound(
                    f"customer '{customer_id}' has no {' / '.join(names)} event for this "
                    "template's trigger; preview without --customer, or pass --var"
                )
            event = {
                "event": found[0],
                "properties": json.loads(found[1]) if found[1] else {},
                "timestamp": found[2].isoformat(),
            }
    traits: dict[str, Any] = {}
    for (raw,) in rows:
        if raw:
            traits.update(json.loads(raw))
    profile: dict[str, Any] = {
        "id": customer_id,
        "email": traits.pop("email", None),
        "phone": traits.pop("phone", None),
        "first_name": traits.pop("first_name", None) or traits.pop("firstName", None),
        "last_name": traits.pop("last_name", None) or traits.pop("lastName", None),
        "properties": traits,
    }
    return profile, event


def _preview_data(
    template: Template, customer_id: str | None, variables: list[str]
) -> dict[str, Any]:
    if customer_id:
        customer, event = _customer_from_store(customer_id, template.spec.trigger)
    else:
        customer, event = dict(SAMPLE_CUSTOMER), dict(SAMPLE_EVENTS[template.spec.trigger])
    data: dict[str, Any] = {
        "customer": customer,
        "store": dict(SAMPLE_STORE),
        "event": event,
        "journey": dict(SAMPLE_JOURNEY),
        "params": {},
    }
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {item!r}", field="--var")
        root = key.split(".", 1)[0]
        if root not in data:
            key = f"params.{key}"
        _set_path(data, key, _parse_value(value))
    return data


def _show(body: str, title: str) -> None:
    # Text, not markup: rendered messages contain brackets ("[Linen shirt]") of their own.
    console.print(Panel(Text(body), title=Text(title), expand=False))


@templates_app.command("list")
def list_templates() -> None:
    """List the templates: pre-built ones and the workspace's own."""
    library = _library()
    table = Table("name", "title", "trigger", "channels", "origin")
    for template in library.all():
        origin = "built-in" if template.builtin else template.source
        table.add_row(
            template.name,
            template.spec.title,
            template.spec.trigger,
            ", ".join(template.channels),
            origin,
        )
    console.print(table)


@templates_app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(help="Template name (see `wayline templates list`).")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Customer id from the analytics store.")
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Override a value: KEY=VALUE (repeat).")
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="email, sms or whatsapp (default: all).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the email's HTML to this file.")
    ] = None,
) -> None:
    """Render a template for a customer (or sample data) on each of its channels."""
    template = _library().get(name)
    data = _preview_data(template, customer, var or [])
    channels = [channel] if channel else list(template.channels)
    for ch in channels:
        if ch not in ("email", "sms", "whatsapp"):
            raise InputError(f"unknown channel {ch!r}", field="--channel")
        context = template.context_for(
            customer=data["customer"],
            store=data["store"],
            channel=ch,
            code_secret="preview",
            event=data["event"],
            journey=data["journey"],
            params=data["params"],
            unsubscribe_url=f"{data['store'].get('url') or 'https://example.com'}/u/preview",
        )
        if ch == "email":
            email = template.render_email(context)
            _show(
                f"Subject: {email.subject}\nPreheader: {email.preheader}\n\n{email.text}",
                f"{name} · email (plain-text part)",
            )
            if html is not None:
                html.write_text(email.html, encoding="utf-8")
                console.print(f"HTML written to {html}", highlight=False)
        elif ch == "sms":
            body = template.render_sms(context)
            _show(body, f"{name} · SMS ({len(body)} characters)")
        else:
            wa = template.render_whatsapp(context)
            lines = [f"template {wa.name} ({wa.language})"]
            lines += [f"  {{{{{i}}}}} = {p}" for i, p in enumerate(wa.parameters, start=1)]
            session = template.render_whatsapp_text(context)
            if session:
                lines += ["", "inside the 24-hour window:", session]
            _show("\n".join(lines), f"{name} · WhatsApp")


@templates_app.command("validate")
def validate(
    names: Annotated[
        list[str] | None, typer.Argument(help="Template names (default: all).")
    ] = None,
) -> None:
    """Check templates: syntax, every variable declared, a render with sample data."""
    library = _library()
    for name in names or library.names():
        library.get(name).validate()
        console.print(f"[green]ok[/] {name}", highlight=False)


@templates_app.command("copy")
def copy(name: Annotated[str, typer.Argument(help="A pre-built template's name.")]) -> None:
    """Copy a pre-built template into the workspace to edit it (the copy takes precedence)."""
    path = _library().copy(name)
    console.print(f"Copied to {path}: edit it there.", highlight=False)
