"""A message template: its file, its validation, and its rendering per channel.

A template is one YAML file (see ``library/`` for the pre-built ones)::

    name: abandoned_cart
    title: Abandoned cart
    description: …
    trigger: cart                 # none | product | cart | order: what else is in the context
    params: {discount_percent: 10}  # defaults, overridable per journey step
    email: {subject: …, preheader: …, html: …}   # an HTML fragment, placed in the layout
    sms: {body: …}
    whatsapp:
      name: abandoned_cart_v1     # the approved template's name and language at Meta
      language: en_US
      parameters: ["{{ first_name('there') }}", …]  # {{1}}, {{2}}… of the approved body
      session_text: …             # optional: a free text for inside the 24-hour window

Emails are rendered into ``library/_layout.html`` (a responsive, table-based layout whose CSS
is inlined with css-inline, media queries kept for clients that honour them); the plain-text part
is derived from the result. :meth:`Template.validate` parses every part, checks each reference
against the declared context, and renders it once with sample data, so a broken template is
refused when it is saved or a journey is published, not when it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
import yaml
from jinja2 import Template as JinjaTemplate
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wayline.channels.base import WhatsAppTemplateContent
from wayline.channels.templates.context import (
    SAMPLE_CUSTOMER,
    SAMPLE_EVENTS,
    SAMPLE_JOURNEY,
    SAMPLE_STORE,
    build_context,
    declared_context,
)
from wayline.channels.templates.sandbox import (
    ContextSandbox,
    ReferenceProblem,
    Shape,
    check_references,
)
from wayline.channels.templates.text import html_to_text
from wayline.errors import InputError

LAYOUT_PATH = Path(__file__).parent / "library" / "_layout.html"
_HTML_ENV = ContextSandbox(html=True)
_TEXT_ENV = ContextSandbox(html=False)
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_CODE_SECRET_SAMPLE = "sample"


class RenderError(InputError):
    """A template that cannot be rendered with the data it was given."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailPart(_Model):
    subject: str
    preheader: str = ""
    html: str


class SmsPart(_Model):
    body: str


class WhatsAppPart(_Model):
    name: str
    language: str
    parameters: list[str] = Field(default_factory=list)
    header_parameters: list[str] = Field(default_factory=list)
    session_text: str | None = None


class TemplateFile(_Model):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    description: str = ""
    trigger: str = "none"
    params: dict[str, Any] = Field(default_factory=dict)
    email: EmailPart | None = None
    sms: SmsPart | None = None
    whatsapp: WhatsAppPart | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


def _parts(spec: TemplateFile) -> list[tuple[str, str, bool]]:
    """(field, source, is_html) of every Jinja source in the template."""
    parts: list[tuple[str, str, bool]] = []
    if spec.email:
        parts += [
            ("email.subject", spec.email.subject, False),
            ("email.preheader", spec.email.preheader, False),
            ("email.html", spec.email.html, True),
        ]
    if spec.sms:
        parts.append(("sms.body", spec.sms.body, False))
    if spec.whatsapp:
        for i, p in enumerate(spec.whatsapp.header_parameters):
            parts.append((f"whatsapp.header_parameters[{i}]", p, False))
        for i, p in enumerate(spec.whatsapp.parameters):
            parts.append((f"whatsapp.parameters[{i}]", p, False))
        if spec.whatsapp.session_text:
            parts.append(("whatsapp.session_text", spec.whatsapp.session_text, False))
    return parts


def _compile(
    source: str, *, html: bool, context: Mapping[str, Shape], where: str, field: str
) -> JinjaTemplate:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        ast = env.parse(source)
        check_references(ast, context)
        return env.from_string(ast)
    except TemplateSyntaxError as exc:
        raise InputError(
            exc.message or "syntax error", source=where, row=exc.lineno, field=field
        ) from None
    except ReferenceProblem as exc:
        raise InputError(exc.message, source=where, row=exc.lineno, field=field) from None


class Template:
    """A loaded, validated template. Render with a context from :meth:`context_for`."""

    def __init__(self, spec: TemplateFile, *, source: str, builtin: bool = False) -> None:
        self.spec = spec
        self.source = source
        self.builtin = builtin
        shape = declared_context(spec.trigger, spec.params)
        self._compiled = {
            field: _compile(text, html=html, context=shape, where=source, field=field)
            for field, text, html in _parts(spec)
        }
        self._layout = _compile(
            LAYOUT_PATH.read_text(encoding="utf-8"),
            html=True,
            context={**shape, "body": str, "preheader": str, "subject": str},
            where=str(LAYOUT_PATH),
            field="layout",
        )

    @classmethod
    def load(cls, path: Path, *, builtin: bool = False) -> Template:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML: {exc}", source=str(path)) from None
        return cls.from_data(raw, source=str(path), builtin=builtin)

    @classmethod
    def from_data(cls, raw: Any, *, source: str, builtin: bool = False) -> Template:
        try:
            spec = TemplateFile.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            field = ".".join(str(p) for p in errors[0]["loc"]) or None
            message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
            raise InputError(message, source=source, field=field) from None
        return cls(spec, source=source, builtin=builtin)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c in ("email", "sms", "whatsapp") if getattr(self.spec, c) is not None)

    def context_for(
        self,
        *,
        customer: Mapping[str, Any],
        store: Mapping[str, Any],
        channel: str,
        code_secret: str,
        event: Mapping[str, Any] | None = None,
        journey: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        unsubscribe_url: str | None = None,
    ) -> dict[str, Any]:
        """The render context: the template's parameter defaults overridden by ``params``."""
        unknown = set(params or {}) - set(self.spec.params)
        if unknown:
            raise InputError(
                f"unknown parameter(s) {sorted(unknown)}; declared: {sorted(self.spec.params)}",
                source=self.source,
                field="params",
            )
        return build_context(
            trigger=self.spec.trigger,
            customer=customer,
            store=store,
            channel=channel,
            code_secret=code_secret,
            event=event,
            journey=journey,
            params={**self.spec.params, **(params or {})},
            unsubscribe_url=unsubscribe_url,
        )

    def sample_context(self, channel: str) -> dict[str, Any]:
        return self.context_for(
            customer=SAMPLE_CUSTOMER,
            store=SAMPLE_STORE,
            channel=channel,
            code_secret=_CODE_SECRET_SAMPLE,
            event=SAMPLE_EVENTS[self.spec.trigger],
            journey=SAMPLE_JOURNEY,
            unsubscribe_url="https://casaverde.example/u/sample",
        )

    def _render(self, field: str, context: Mapping[str, Any]) -> str:
        template = self._compiled[field] if field != "layout" else self._layout
        try:
            return template.render(context)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise RenderError(str(exc), source=self.source, field=field) from None

    def _need(self, channel: str) -> None:
        if getattr(self.spec, channel) is None:
            raise InputError(f"template '{self.name}' has no {channel} version", source=self.source)

    def render_email(self, context: Mapping[str, Any]) -> RenderedEmail:
        self._need("email")
        subject = " ".join(self._render("email.subject", context).split())
        preheader = " ".join(self._render("email.preheader", context).split())
        body = self._render("email.html", context)
        page = self._render(
            "layout",
            {**context, "body": Markup(body), "preheader": preheader, "subject": subject},
        )
        html = _INLINER.inline(page)
        return RenderedEmail(
            subject=subject, preheader=preheader, html=html, text=html_to_text(html)
        )

    def render_sms(self, context: Mapping[str, Any]) -> str:
        self._need("sms")
        return self._render("sms.body", context).strip()

    def render_whatsapp(self, context: Mapping[str, Any]) -> WhatsAppTemplateContent:
        self._need("whatsapp")
        wa = self.spec.whatsapp
        assert wa is not None

        # WhatsApp refuses parameters with newlines, tabs or more than 4 spaces in a row.
        def one_line(field: str) -> str:
            return " ".join(self._render(field, context).split())

        return WhatsAppTemplateContent(
            name=wa.name,
            language=wa.language,
            parameters=tuple(
                one_line(f"whatsapp.parameters[{i}]") for i in range(len(wa.parameters))
            ),
            header_parameters=tuple(
                one_line(f"whatsapp.header_parameters[{i}]")
                for i in range(len(wa.header_parameters))
            ),
        )

    def render_whatsapp_text(self, context: Mapping[str, Any]) -> str | None:
        self._need("whatsapp")
        if not (self.spec.whatsapp and self.spec.whatsapp.session_text):
            return None
        return self._render("whatsapp.session_text", context).strip()

    def validate(self) -> None:
        """Render every channel once with sample data; raise :class:`InputError` if one fails.

        (References were already checked against the declared context when loading.)
        """
        for channel in self.channels:
            context = self.sample_context(channel)
            if channel == "email":
                self.render_email(context)
            elif channel == "sms":
                self.render_sms(context)
            else:
                self.render_whatsapp(context)
                self.render_whatsapp_text(context)
