"""The plain-text part of an email, derived from its final HTML.

What a reader of the text part needs: the words in reading order, paragraphs and list items on
their own lines, links written out (``Shop now (https://…)``), images by their alt text, and
nothing that was hidden (the preheader) or never shown (``<head>``, ``<style>``, the pixel).

Every email a journey sends is converted, so the markup is read by one regular expression
(:func:`_feed`) rather than :class:`html.parser.HTMLParser`: ~160 µs CPU instead of ~260 for
a built-in template's email, of ~520 µs to render it all (measured in one process), and the
attributes only of the tags where they can matter (:func:`_matter`): about a quarter less
again. The tests feed the same writer through ``HTMLParser`` as the reference and hold the
texts equal.
"""

from __future__ import annotations

import re
from html import unescape

_BLOCKS = {
    "p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "section", "article", "header", "footer", "blockquote", "hr",
}  # fmt: skip
_SKIP = {"head", "style", "script", "title"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "source", "wbr"}
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)


# Text up to the next ``<``; a comment (MSO conditionals included) or declaration; a
# raw-text element (its content is not markup); a start or end tag (quoted values may hold
# ``>``); or a ``<`` that starts none of these, as text. Runs of plain characters are matched
# whole, not one by one: long inlined ``style`` attributes are most of an email's bytes.
_TOKEN = re.compile(
    r"(?P<text>[^<]+)"
    r"|<!--.*?(?:-->|\Z)|<[!?][^>]*>?"
    r"|<(?P<raw>script|style)\b[^>]*>.*?(?:</(?P=raw)\s*>|\Z)"
    r"""|<(?P<end>/)?(?P<tag>[a-zA-Z][^\s/>]*)(?P<attrs>(?:[^'">]+|"[^"]*"|'[^']*')*)>"""
    r"|(?P<lt><[^<]*)",
    re.DOTALL | re.IGNORECASE,
)
_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


class _TextWriter:
    """The text of an email's markup, from its tags and text in document order."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.skip_depth = 0
        self.stack: list[tuple[str, bool, str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        hidden = tag in _SKIP or bool(_HIDDEN.search(a.get("style") or ""))
        if tag in _VOID:
            if self.skip_depth:
                return
            if tag == "br":
                self.out.append("\n")
            elif tag == "hr":
                self.out.append("\n----\n")
            elif tag == "img":
                alt = (a.get("alt") or "").strip()
                if alt:
                    self.out.append(f"[{alt}]")
            return
        if hidden:
            self.skip_depth += 1
        elif not self.skip_depth:
            if tag in _BLOCKS:
                self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
        self.stack.append((tag, hidden, a.get("href") if tag == "a" else None, len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # Unwind to the matching open tag; email HTML is often sloppy about closing.
        while self.stack:
            name, hidden, href, start = self.stack.pop()
            if hidden:
                self.skip_depth -= 1
            elif not self.skip_depth and name == "a" and href and href.startswith("http"):
                label = " ".join("".join(self.out[start:]).split())
                if label != href:
                    self.out.append(f" ({href})" if label else href)
            if not hidden and not self.skip_depth and name in _BLOCKS and name != "li":
                self.out.append("\n")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)


def _attrs(text: str) -> list[tuple[str, str | None]]:
    # An attribute without a value reads as "" (HTMLParser gives None): the same to the writer.
    return [(name.lower(), unescape(d or s or b)) for name, d, s, b in _ATTR.findall(text)]


def _matter(tag: str, attrs: str) -> bool:
    """Whether the writer could read anything in ``attrs``: a link's ``href``, an image's
    ``alt``, or a style that hides. Most tags of an inlined email carry a long ``style`` that
    hides nothing; skipping their parse is a third of the reading. Conservative: a character
    reference might spell ``display`` once unescaped, so any ``&`` is parsed."""
    if tag == "a" or tag == "img":
        return True
    low = attrs.lower()
    return "display" in low or "mso-hide" in low or "&" in attrs


def _feed(writer: _TextWriter, html: str) -> None:
    """Hand ``html``'s start tags, end tags and text to ``writer``, in order."""
    for m in _TOKEN.finditer(html):
        text, tag = m.group("text", "tag")
        if text is None:
            text = m.group("lt")
        if text is not None:
            writer.handle_data(unescape(text) if "&" in text else text)
        elif m.group("raw"):  # script and style: skipped whole
            writer.handle_starttag(m.group("raw").lower(), [])
            writer.handle_endtag(m.group("raw").lower())
        elif tag is not None:
            name = tag.lower()
            if m.group("end"):
                writer.handle_endtag(name)
            else:
                attrs = m.group("attrs")
                writer.handle_starttag(name, _attrs(attrs) if _matter(name, attrs) else [])
                if attrs.endswith("/"):
                    writer.handle_endtag(name)


def html_to_text(html: str) -> str:
    """Readable plain text for an email's HTML."""
    writer = _TextWriter()
    _feed(writer, html)
    return _tidy(writer.out)


def _tidy(out: list[str]) -> str:
    lines = [" ".join(line.split()) for line in "".join(out).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
