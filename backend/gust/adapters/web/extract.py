"""Main-text extraction: readability-lxml first, a BeautifulSoup reading of the page when
readability finds too little. CPU-bound: callers run it on a worker thread."""

from __future__ import annotations

import logging
import re
import warnings

from bs4 import BeautifulSoup, Tag, XMLParsedAsHTMLWarning
from readability import Document
from readability.readability import Unparseable

from gust.ports.web import ExtractedText

log = logging.getLogger(__name__)

# Never part of the main text.
STRIP_TAGS = [
    "script", "style", "noscript", "template", "nav", "aside", "form",
    "button", "select", "iframe", "svg", "canvas", "object", "embed", "head", "menu", "dialog",
]  # fmt: skip
STRIP_ROLES = re.compile(r"^(navigation|banner|contentinfo|menu|menubar|search|complementary)$", re.I)
BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol",
    "dl", "dt", "dd", "table", "tr", "td", "th", "blockquote", "pre", "figure", "figcaption",
    "address", "details", "summary", "hr", "body",
]  # fmt: skip
HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
FALLBACK_ITEMS = [*HEADINGS, "p", "li", "blockquote", "pre", "dd", "figcaption"]
PARAGRAPH = "\x00"  # markers that survive whitespace collapsing
LINE = "\x01"
MIN_MAIN_CHARS = 250  # less than this from readability: read the page ourselves
MAX_TITLE_CHARS = 200


def _soup(html: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(html, "lxml")


# Page chrome, unless inside an article (where <header> holds the headline).
CHROME_TAGS = ["header", "footer"]
CONTENT_TAGS = frozenset({"article", "main"})


def _strip_noise(root: Tag) -> None:
    for tag in root.find_all(STRIP_TAGS):
        tag.decompose()
    for tag in root.find_all(CHROME_TAGS):
        if not tag.decomposed and not any(parent.name in CONTENT_TAGS for parent in tag.parents):
            tag.decompose()
    for tag in root.find_all(True):
        if tag.decomposed or not isinstance(tag.attrs, dict):
            continue
        if (
            STRIP_ROLES.match(str(tag.get("role") or ""))
            or tag.has_attr("hidden")
            or str(tag.get("aria-hidden") or "").lower() == "true"
        ):
            tag.decompose()


def normalize(text: str) -> str:
    """Collapse whitespace in lines, keep paragraph breaks (blank lines) and line breaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        kept = "\n".join(line for line in lines if line)
        if kept:
            paragraphs.append(kept)
    return "\n\n".join(paragraphs)


def tag_text(root: Tag) -> str:
    """The text of an element: inline whitespace collapsed, one paragraph per block element."""
    for pre in root.find_all("pre"):
        pre.string = pre.get_text().replace("\n", LINE)
    for br in root.find_all("br"):
        br.replace_with(LINE)
    for element in root.find_all(BLOCK_TAGS):
        element.insert_before(PARAGRAPH)
        element.insert_after(PARAGRAPH)
    raw = re.sub(r"\s+", " ", "".join(root.strings))
    paragraphs = []
    for chunk in raw.split(PARAGRAPH):
        lines = [" ".join(line.split()) for line in chunk.split(LINE)]
        kept = "\n".join(line for line in lines if line)
        if kept:
            paragraphs.append(kept)
    return "\n\n".join(paragraphs)


def cap(text: str, max_chars: int) -> str:
    """Cut at a paragraph or word boundary at most max_chars long."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    boundary = cut.rfind("\n\n")
    if boundary < max_chars // 2:
        boundary = cut.rfind(" ")
    return (cut[:boundary] if boundary > 0 else cut).rstrip() + " …"


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    title = " ".join(title.split())
    return title[:MAX_TITLE_CHARS] or None


class HtmlExtractor:
    """The TextExtractor of Gust: readability-lxml with a BeautifulSoup fallback."""

    def __init__(self, *, min_main_chars: int = MIN_MAIN_CHARS) -> None:
        self.min_main_chars = min_main_chars
        # readability logs a traceback for every page it cannot parse; we fall back instead.
        logging.getLogger("readability.readability").setLevel(logging.CRITICAL)

    def extract(self, body: str, *, url: str, content_type: str, max_chars: int) -> ExtractedText:
        """The main text of a page, capped at max_chars."""
        if content_type == "text/plain":
            return ExtractedText(title=None, text=cap(normalize(body), max_chars), method="plain")
        main = self.readability(body)
        if main is not None and len(main.text) >= self.min_main_chars:
            return ExtractedText(main.title, cap(main.text, max_chars), "readability")
        fallback = self.fallback(body)
        if main is not None and len(main.text) >= len(fallback.text):
            return ExtractedText(main.title or fallback.title, cap(main.text, max_chars), "readability")
        return ExtractedText(fallback.title, cap(fallback.text, max_chars), "fallback")

    def readability(self, html: str) -> ExtractedText | None:
        """readability-lxml's main content, or None when it cannot parse the page."""
        try:
            document = Document(html)
            summary = document.summary(html_partial=True)
            title = _clean_title(document.short_title())
        except (Unparseable, ValueError, TypeError) as exc:
            log.debug("readability could not parse a page: %s", type(exc).__name__)
            return None
        root = _soup(summary)
        _strip_noise(root)
        return ExtractedText(title, tag_text(root), "readability")

    def fallback(self, html: str) -> ExtractedText:
        """Title, meta description, headings and paragraphs, read with BeautifulSoup."""
        soup = _soup(html)
        title = _clean_title(self._title(soup))
        description = self._meta(soup, "description") or self._meta(soup, "og:description")
        _strip_noise(soup)
        items: list[str] = [" ".join(description.split())] if description else []
        seen: set[int] = set()
        for tag in soup.find_all(FALLBACK_ITEMS):
            if any(id(parent) in seen for parent in tag.parents):
                continue  # already read as part of an enclosing item
            seen.add(id(tag))
            text = " ".join(tag.get_text(" ").split())
            if text:
                items.append(text)
        text = "\n\n".join(items)
        body = soup.body or soup
        if len(text) < self.min_main_chars:
            whole = tag_text(body)
            if len(whole) > len(text):
                text = "\n\n".join(filter(None, [items[0] if description else "", whole]))
        return ExtractedText(title, text, "fallback")

    @staticmethod
    def _meta(soup: BeautifulSoup, name: str) -> str | None:
        tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
        if isinstance(tag, Tag):
            content = tag.get("content")
            if isinstance(content, str) and content.strip():
                return content
        return None

    def _title(self, soup: BeautifulSoup) -> str | None:
        title = self._meta(soup, "og:title")
        if title:
            return title
        if soup.title is not None and soup.title.string:
            return str(soup.title.string)
        h1 = soup.find("h1")
        return h1.get_text(" ") if isinstance(h1, Tag) else None
