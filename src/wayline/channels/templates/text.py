"""The plain-text part of an email, derived from its final HTML.

What a reader of the text part needs: the words in reading order, paragraphs and list items on
their own lines, links written out (``Shop now (https://…)``), images by their alt text, and
nothing that was hidden (the preheader) or never shown (``<head>``, ``<style>``, the pixel).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {
    "p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "section", "article", "header", "footer", "blockquote", "hr",
}  # fmt: skip
_SKIP = {"head", "style", "script", "title"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "source", "wbr"}
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
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


def html_to_text(html: str) -> str:
    """Readable plain text for an email's HTML."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
