"""Message templates: sandboxed Jinja2, validated against a declared context, per channel."""

from wayline.channels.templates.context import build_context, declared_context
from wayline.channels.templates.library import BUILTIN_DIR, TemplateLibrary
from wayline.channels.templates.render import RenderedEmail, RenderError, Template
from wayline.channels.templates.text import html_to_text

__all__ = [
    "BUILTIN_DIR",
    "RenderError",
    "RenderedEmail",
    "Template",
    "TemplateLibrary",
    "build_context",
    "declared_context",
    "html_to_text",
]
