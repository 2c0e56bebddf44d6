"""``/api/v1/templates``: the workspace's message templates — CRUD, and preview.

Templates are YAML files (see :mod:`wayline.channels.templates.render`) kept by
:class:`~wayline.channels.templates.TemplateLibrary`: the pre-built ones ship in the package and
are read-only; a workspace's own live in ``<home>/templates/<workspace_id>/``. A workspace
template with a pre-built one's name overrides it (that is how a pre-built template is edited:
create a copy under its name). Every save is validated by the template itself — syntax, every
reference against the declared context, a sample render of each channel — so a template that
reaches for anything outside its sandbox, or names an unknown variable, is refused with a 400
naming the field.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from wayline.api.rest.deps import Page, Paging, Workspace
from wayline.channels.templates import BUILTIN_DIR, Template, TemplateLibrary
from wayline.channels.templates.context import (
    SAMPLE_CUSTOMER,
    SAMPLE_EVENTS,
    SAMPLE_JOURNEY,
    SAMPLE_STORE,
)
from wayline.channels.templates.library import workspace_templates_dir
from wayline.config import Settings
from wayline.errors import Conflict, InputError, NotFound

router = APIRouter(prefix="/templates", tags=["Templates"])

NAME_PATTERN = r"^[a-z0-9_]{1,100}$"
TemplateName = Annotated[str, PathParam(pattern=NAME_PATTERN, description="The template's name.")]
Channel = Literal["email", "sms", "whatsapp"]


def workspace_dir(settings: Settings, workspace_id: str) -> Path:
    return workspace_templates_dir(settings.home, workspace_id)


def library(settings: Settings, workspace_id: str) -> TemplateLibrary:
    return TemplateLibrary(workspace_dir(settings, workspace_id))


class TemplateSummary(BaseModel):
    name: str
    title: str
    description: str
    trigger: str
    channels: list[str]
    builtin: bool
    """A pre-built template (read-only); ``overrides_builtin`` marks a workspace copy of one."""
    overrides_builtin: bool


class TemplateOut(TemplateSummary):
    params: dict[str, Any]
    yaml: str = Field(description="The template file.")


class TemplateDoc(BaseModel):
    """A template file's content (see the journey language docs: message templates)."""

    model_config = ConfigDict(extra="allow")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = Field(None, description="Default: the template's first channel.")
    params: dict[str, Any] | None = Field(None, description="Overrides of the template's params.")
    customer: dict[str, Any] | None = Field(None, description="Merged over a sample customer.")
    event: dict[str, Any] | None = Field(None, description="The trigger event (default: sample).")


class PreviewOut(BaseModel):
    channel: Channel
    subject: str | None = None
    preheader: str | None = None
    html: str | None = None
    text: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str | None = None
    whatsapp_parameters: list[str] | None = None


def _summary(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "title": template.spec.title,
        "description": template.spec.description,
        "trigger": template.spec.trigger,
        "channels": list(template.channels),
        "builtin": template.builtin,
        "overrides_builtin": not template.builtin
        and (BUILTIN_DIR / f"{template.name}.yaml").is_file(),
    }


def template_out(template: Template) -> TemplateOut:
    return TemplateOut(
        **_summary(template),
        params=dict(template.spec.params),
        yaml=Path(template.source).read_text(encoding="utf-8"),
    )


def list_templates(settings: Settings, workspace_id: str) -> list[TemplateSummary]:
    return [TemplateSummary(**_summary(t)) for t in library(settings, workspace_id).all()]


def own_path(settings: Settings, workspace_id: str, name: str) -> Path:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError("a template name is lower-case letters, digits and _", field="name")
    return workspace_dir(settings, workspace_id) / f"{name}.yaml"


def parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            row=mark.line + 1 if mark is not None else None,
            field="yaml",
        ) from None


def save_template(
    settings: Settings, workspace_id: str, name: str, document: Any, *, create: bool
) -> TemplateOut:
    """Validate ``document`` as template ``name`` and write it to the workspace's folder.

    Args:
        create: a new template (Conflict when the workspace has one of that name); otherwise
            replace an existing workspace template (NotFound / Conflict for a pre-built one).
    """
    path = own_path(settings, workspace_id, name)
    if not isinstance(document, dict):
        raise InputError("a template is a mapping of name, title, trigger, email/sms/whatsapp…")
    document = {"name": name, **document}
    if document["name"] != name:
        raise InputError(f"the body names '{document['name']}', the address '{name}'", field="name")
    if create and path.exists():
        raise Conflict(f"the workspace already has a template '{name}': PUT to change it")
    if not create and not path.exists():
        if (BUILTIN_DIR / f"{name}.yaml").is_file():
            raise Conflict(
                f"'{name}' is a pre-built template (read-only): POST a template with this name "
                "to override it in this workspace"
            )
        raise NotFound(f"no template named '{name}'")
    template = Template.from_data(document, source=name)
    template.validate()
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed: a reader (the worker rendering a send) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return template_out(library(settings, workspace_id).get(name))


def delete_template(settings: Settings, workspace_id: str, name: str) -> None:
    path = own_path(settings, workspace_id, name)
    if not path.exists():
        if (BUILTIN_DIR / f"{name}.yaml").is_file():
            raise Conflict(f"'{name}' is a pre-built template and cannot be deleted")
        raise NotFound(f"no template named '{name}'")
    path.unlink()


def preview(template: Template, body: PreviewIn) -> PreviewOut:
    channel = body.channel or (template.channels[0] if template.channels else None)
    if channel is None:
        raise InputError("the template has no channel to preview", field="channel")
    if channel not in template.channels:
        raise InputError(f"template '{template.name}' has no {channel} version", field="channel")
    context = template.context_for(
        customer={**SAMPLE_CUSTOMER, **(body.customer or {})},
        store=SAMPLE_STORE,
        channel=channel,
        code_secret="preview",
        event=body.event if body.event is not None else SAMPLE_EVENTS[template.spec.trigger],
        journey=SAMPLE_JOURNEY,
        params=body.params,
        unsubscribe_url="https://example.invalid/unsubscribe",
    )
    if channel == "email":
        email = template.render_email(context)
        return PreviewOut(
            channel=channel,
            subject=email.subject,
            preheader=email.preheader,
            html=email.html,
            text=email.text,
        )
    if channel == "sms":
        return PreviewOut(channel=channel, text=template.render_sms(context))
    wa = template.render_whatsapp(context)
    return PreviewOut(
        channel=channel,
        text=template.render_whatsapp_text(context),
        whatsapp_template=wa.name,
        whatsapp_language=wa.language,
        whatsapp_parameters=list(wa.parameters),
    )


@router.get("", response_model=Page[TemplateSummary])
def list_all(ctx: Workspace, paging: Paging) -> Page[TemplateSummary]:
    found = list_templates(ctx.settings, ctx.workspace_id)
    items = found[paging.offset : paging.offset + paging.limit]
    return Page[TemplateSummary].of(items, len(found), paging)


@router.get("/{name}", response_model=TemplateOut)
def read(ctx: Workspace, name: TemplateName) -> TemplateOut:
    return template_out(library(ctx.settings, ctx.workspace_id).get(name))


@router.post("", status_code=201, response_model=TemplateOut)
def create(ctx: Workspace, body: TemplateDoc) -> TemplateOut:
    document = body.model_dump()
    name = document.get("name")
    if not isinstance(name, str):
        raise InputError("a template needs a name", field="name")
    return save_template(ctx.settings, ctx.workspace_id, name, document, create=True)


@router.put("/{name}", response_model=TemplateOut)
def replace(ctx: Workspace, name: TemplateName, body: TemplateDoc) -> TemplateOut:
    return save_template(ctx.settings, ctx.workspace_id, name, body.model_dump(), create=False)


@router.delete("/{name}", status_code=204)
def delete(ctx: Workspace, name: TemplateName) -> None:
    delete_template(ctx.settings, ctx.workspace_id, name)


@router.post("/{name}/preview", response_model=PreviewOut)
def preview_template(ctx: Workspace, name: TemplateName, body: PreviewIn) -> PreviewOut:
    return preview(library(ctx.settings, ctx.workspace_id).get(name), body)
