"""The plain-text part of emails: the regular-expression reader of
:mod:`wayline.channels.templates.text` against :class:`html.parser.HTMLParser` feeding the same
writer (the reference it replaced for speed), on random markup and on every built-in email."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.channels.templates import TemplateLibrary, html_to_text
from wayline.channels.templates.text import _TextWriter, _tidy


class _Reference(HTMLParser):
    def __init__(self, writer: _TextWriter) -> None:
        super().__init__(convert_charrefs=True)
        self.writer = writer

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.writer.handle_starttag(tag, [(k, v or "") for k, v in attrs])

    def handle_endtag(self, tag: str) -> None:
        self.writer.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        self.writer.handle_data(data)


def reference_text(html: str) -> str:
    writer = _TextWriter()
    parser = _Reference(writer)
    parser.feed(html)
    parser.close()
    return _tidy(writer.out)


WORDS = st.sampled_from(
    ["Hi", "Ann", " ", "  ", "\n", "a &amp; b", "&lt;3", "x > y", "5 < 6", "caf&eacute;", "Go"]
)
HIDDEN = st.sampled_from(["display:none", "DISPLAY: none;", "color:red", "mso-hide:all", ""])


def element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    tag = st.sampled_from(["p", "div", "span", "b", "li", "ul", "td", "tr", "table", "h1", "P"])
    return st.one_of(
        st.builds(lambda t, s, c: f'<{t} style="{s}">{c}</{t}>', tag, HIDDEN, children),
        st.builds(lambda t, c: f"<{t}>{c}</{t}>", tag, children),
        st.builds(lambda t, c: f"<{t}>{c}", tag, children),  # left open
        st.builds(
            lambda h, c: f"<a class=btn href='{h}'>{c}</a>",
            st.sampled_from(
                ["https://e.example/?a=1&amp;b=2", "mailto:x@y.z", "https://x.example"]
            ),
            children,
        ),
        st.builds(
            lambda a: f'<img src="p.gif" alt="{a}" width=1 />', st.sampled_from(["", "Logo", "a>b"])
        ),
        st.just("<br>"),
        st.just("<br/>"),
        st.just("<hr>"),
        st.just("<!-- a <b>comment</b> -->"),
        st.just("<!--[if mso]><table><tr><td><![endif]-->"),
        st.just("<style>.a > .b { color: red }</style>"),
        st.just("<head><title>T</title><meta charset=utf-8></head>"),
        st.just("<!DOCTYPE html>"),
    )


MARKUP = st.recursive(
    WORDS,
    lambda inner: st.lists(st.one_of(inner, element(inner)), max_size=4).map("".join),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(html=MARKUP)
def test_reader_equals_html_parser(html: str) -> None:
    assert html_to_text(html) == reference_text(html)


@pytest.mark.parametrize("name", TemplateLibrary().names())
def test_every_built_in_email_reads_the_same(name: str) -> None:
    template = TemplateLibrary().get(name)
    if "email" not in template.channels:
        pytest.skip(f"{name} has no email")
    email = template.render_email(template.sample_context("email"))
    assert email.text == reference_text(email.html)
    assert email.text.strip()
