"""Dashboard settings (``/settings``): channel credentials, the sending policy, API keys and
write keys; and the message templates (``/settings/templates``: list, edit, preview).

Every form posts to the same functions as the REST API (:mod:`wayline.api.rest.settings`,
:mod:`wayline.api.rest.templates`). Secrets are shown masked; leaving a secret field empty
keeps the stored one. A new API key is shown once, on the page that created it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from wayline.api.rest import settings as api
from wayline.api.rest import templates as tpl
from wayline.channels.config import SECRET_FIELDS, SETTINGS_TYPES
from wayline.channels.templates import Template
from wayline.errors import Conflict, InputError, NotFound
from wayline.storage.accounts import Accounts
from wayline.web.auth import Session, check_csrf
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

CHANNEL_LABELS = {"email": "E-mail (SMTP)", "whatsapp": "WhatsApp Cloud API", "sms": "SMS (Twilio)"}
#: Settings fields not worth a form field (defaults suit nearly everyone; the API takes them).
_HIDDEN_FIELDS = frozenset(
    {"timeout_seconds", "base_url", "cert_bundle", "status_callback_url", "unsubscribe_mailto"}
)


@dataclasses.dataclass(frozen=True)
class FormField:
    name: str
    kind: str
    """``text``, ``number``, ``secret`` or ``bool``."""
    required: bool
    value: Any


def _fields(channel: str, shown: dict[str, Any] | None) -> list[FormField]:
    out = []
    for f in dataclasses.fields(SETTINGS_TYPES[channel]):
        if f.name in _HIDDEN_FIELDS:
            continue
        annotation = str(f.type)
        kind = (
            "secret"
            if f.name in SECRET_FIELDS
            else "bool"
            if "bool" in annotation
            else "number"
            if annotation in ("int", "float")
            else "text"
        )
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        value = (shown or {}).get(f.name)
        out.append(FormField(f.name, kind, required, value))
    return out


def _render(
    request: Request,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    new_key: str | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> Response:
    db, settings = request.app.state.db, request.app.state.settings
    ws = session.workspace_id
    channels = []
    for channel in CHANNEL_LABELS:
        out = api.channel_out(db, settings, ws, channel)
        channels.append((channel, CHANNEL_LABELS[channel], out, _fields(channel, out.settings)))
    return page(
        request,
        "settings_index.html",
        session,
        title="Settings",
        channels=channels,
        sending=api.load_sending(db, ws),
        api_keys=Accounts(db).list_api_keys(ws),
        write_keys=api.write_keys(db, ws),
        errors=errors or {},
        new_key=new_key,
        saved=saved,
        status_code=status_code,
    )


@router.get("/settings")
def settings_page(request: Request, session: Session, saved: str | None = None) -> Response:
    return _render(request, session, saved=saved)


@router.post("/settings/channels/{channel}")
async def channel_form(request: Request, session: Session, channel: str) -> Response:
    await check_csrf(request, session)
    if channel not in CHANNEL_LABELS:
        raise NotFound(f"no channel '{channel}'")
    form = await request.form()
    kinds = {f.name: f.kind for f in _fields(channel, None)}
    body: dict[str, Any] = {}
    for name, kind in kinds.items():
        value = form.get(name)
        if kind == "bool":
            if value in ("true", "false"):
                body[name] = value == "true"
        elif isinstance(value, str) and value.strip():
            body[name] = value.strip()
    try:
        api.save_channel(
            request.app.state.db, request.app.state.settings, session.workspace_id, channel, body
        )
    except InputError as exc:
        return _render(request, session, errors={channel: str(exc)}, status_code=400)
    return RedirectResponse(f"/settings?saved={channel}#channel-{channel}", status_code=303)


@router.post("/settings/sending")
async def sending_form(request: Request, session: Session) -> Response:
    await check_csrf(request, session)
    form = await request.form()
    raw: dict[str, Any] = {
        "quiet_hours": {"start": form.get("quiet_start"), "end": form.get("quiet_end")}
        if form.get("quiet_enabled")
        else None,
        "frequency_cap": {
            "max_messages": form.get("cap_max"),
            "per_hours": form.get("cap_hours"),
        }
        if form.get("cap_enabled")
        else None,
        "default_timezone": form.get("default_timezone") or "UTC",
    }
    try:
        sending = api.SendingSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _render(
            request, session, errors={"sending": f"{where}: {first['msg']}"}, status_code=400
        )
    api.save_sending(request.app.state.db, session.workspace_id, sending)
    return RedirectResponse("/settings?saved=sending#sending", status_code=303)


@router.post("/settings/api-keys")
async def create_api_key(request: Request, session: Session) -> Response:
    await check_csrf(request, session)
    form = await request.form()
    name = form.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return _render(
            request,
            session,
            errors={"api_keys": "give the key a name (what it is for)"},
            status_code=400,
        )
    _, key = Accounts(request.app.state.db).create_api_key(session.workspace_id, name.strip())
    return _render(request, session, new_key=key)


@router.post("/settings/api-keys/{key_id}/revoke")
async def revoke_api_key(request: Request, session: Session, key_id: str) -> Response:
    await check_csrf(request, session)
    Accounts(request.app.state.db).revoke_api_key(session.workspace_id, key_id)
    return RedirectResponse("/settings?saved=api_keys#api-keys", status_code=303)


# -- templates ----------------------------------------------------------------------------------

NEW_TEMPLATE = """name: my_template
title: My template
description: ""
trigger: none          # none | product | cart | order
params: {}
email:
  subject: "Hello {{ first_name('there') }}"
  html: |
    <p>Hi {{ first_name('there') }}, thanks for shopping at {{ store.name }}.</p>
sms:
  body: "{{ store.name }}: hi {{ first_name('there') }}! Reply STOP to opt out."
"""


@router.get("/settings/templates")
def templates_page(request: Request, session: Session) -> Response:
    found = tpl.list_templates(request.app.state.settings, session.workspace_id)
    return page(request, "templates_list.html", session, title="Message templates", templates=found)


def _edit(
    request: Request,
    session: Session,
    *,
    name: str | None,
    source: str,
    builtin: bool = False,
    error: str | None = None,
    preview: tpl.PreviewOut | None = None,
    channel: str = "email",
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "templates_edit.html",
        session,
        title=f"Template {name}" if name else "New template",
        name=name,
        source=source,
        builtin=builtin,
        error=error,
        preview=preview,
        channel=channel,
        status_code=status_code,
    )


@router.get("/settings/templates/new")
def new_template_page(request: Request, session: Session) -> Response:
    return _edit(request, session, name=None, source=NEW_TEMPLATE)


@router.get("/settings/templates/{name}")
def template_page(request: Request, session: Session, name: str) -> Response:
    template = tpl.library(request.app.state.settings, session.workspace_id).get(name)
    out = tpl.template_out(template)
    return _edit(request, session, name=name, source=out.yaml, builtin=template.builtin)


@router.post("/settings/templates")
async def save_template_form(request: Request, session: Session) -> Response:
    """Save (create or replace) a workspace template from its YAML, or preview it."""
    await check_csrf(request, session)
    form = await request.form()
    source = form.get("yaml")
    source = source if isinstance(source, str) else ""
    action = form.get("action")
    channel = form.get("channel") if form.get("channel") in ("email", "sms", "whatsapp") else None
    original = form.get("original")
    original = original if isinstance(original, str) and original else None
    settings = request.app.state.settings
    try:
        document = tpl.parse_yaml(source)
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise InputError("the template needs a name", field="name")
        name = str(document["name"])
        if action == "preview":
            template = Template.from_data(document, source=name)
            shown = tpl.preview(template, tpl.PreviewIn(channel=channel))
            return _edit(
                request, session, name=original, source=source, preview=shown, channel=shown.channel
            )
        exists = tpl.own_path(settings, session.workspace_id, name).exists()
        tpl.save_template(settings, session.workspace_id, name, document, create=not exists)
    except (InputError, Conflict) as exc:
        return _edit(
            request, session, name=original, source=source, error=str(exc), status_code=400
        )
    return RedirectResponse(f"/settings/templates/{name}", status_code=303)


@router.post("/settings/templates/{name}/delete")
async def delete_template_form(request: Request, session: Session, name: str) -> Response:
    await check_csrf(request, session)
    tpl.delete_template(request.app.state.settings, session.workspace_id, name)
    return RedirectResponse("/settings/templates", status_code=303)
