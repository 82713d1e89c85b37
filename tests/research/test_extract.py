"""Main-text extraction of pages the local site serves (fetched for real)."""

from __future__ import annotations

from gust.adapters.web.extract import HtmlExtractor, cap, normalize
from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.ports.web import FetchedPage
from tests.support.site_server import ARTICLES, SiteServer

NOISE = ["NAVLINK", "SCRIPTCODE", "STYLECODE", "SIDEBARTEXT", "FOOTERTEXT"]


async def fetch(site: SiteServer, path: str) -> FetchedPage:
    fetcher = SafeFetcher(policy=AddressPolicy(allow_private=True))
    try:
        return await fetcher.fetch(site.url(path))
    finally:
        await fetcher.close()


def extract(page: FetchedPage, max_chars: int = 20_000) -> tuple[str | None, str, str]:
    result = HtmlExtractor().extract(
        page.text, url=page.url, content_type=page.content_type, max_chars=max_chars
    )
    return result.title, result.text, result.method


async def test_article_keeps_its_text_without_navigation_or_scripts(site: SiteServer) -> None:
    page = await fetch(site, "/article/tides")
    for noise in NOISE:
        assert noise in page.text  # the raw page has them all
    title, text, method = extract(page)
    assert method == "readability"
    assert title == "Tidal Power in the Bay of Fundy"
    for paragraph in ARTICLES["tides"][1]:
        assert paragraph in text
    for noise in NOISE:
        assert noise not in text
    assert "\n\n" in text and "  " not in text


async def test_page_readability_cannot_read_falls_back_to_beautifulsoup(site: SiteServer) -> None:
    page = await fetch(site, "/unreadable")
    extractor = HtmlExtractor()
    main = extractor.readability(page.text)
    assert main is None or len(main.text) < extractor.min_main_chars  # readability finds too little
    title, text, method = extract(page)
    assert method == "fallback"
    assert title == "Community Garden Minutes"
    assert text.startswith("Minutes of the March meeting of the Elm Street garden.")  # meta description
    assert "Water schedule agreed" in text  # heading
    assert "watered on Tuesdays and Fridays from the rain barrels" in text  # paragraphs
    assert "rotate the compost every second Sunday" in text
    assert "NAVLINK" not in text and "SCRIPTCODE" not in text


def test_unparseable_document_falls_back() -> None:
    extractor = HtmlExtractor()
    assert extractor.readability("<!-- nothing but a comment -->") is None
    result = extractor.extract("<!-- nothing -->", url="http://x/", content_type="text/html", max_chars=100)
    assert (result.method, result.text) == ("fallback", "")


async def test_text_plain_is_normalised(site: SiteServer) -> None:
    page = await fetch(site, "/text")
    title, text, method = extract(page)
    assert (title, method) == (None, "plain")
    assert text.startswith("Release notes for version 2.4\n\nThe export command")


async def test_text_is_capped_per_source(site: SiteServer) -> None:
    page = await fetch(site, "/article/bees")
    _, text, _ = extract(page, max_chars=120)
    assert len(text) <= 122
    assert text.endswith(" …")


def test_whitespace_normalisation_and_cap() -> None:
    assert normalize("a  b\t c\n\n\n  d\u00a0 e \n f") == "a b c\n\nd e\nf"
    assert cap("one two three four", 9) == "one two …"
    assert cap("short", 100) == "short"


def test_inline_markup_does_not_split_paragraphs_and_pre_keeps_lines() -> None:
    html = (
        "<html><head><title>T</title></head><body><article><p>A <b>bold</b>\n move and "
        "<a href='#'>a link</a>.</p><pre>line one\nline two</pre>"
        + "<p>"
        + "filler sentence here. " * 20
        + "</p></article></body></html>"
    )
    result = HtmlExtractor().extract(html, url="http://x/", content_type="text/html", max_chars=10_000)
    assert "A bold move and a link." in result.text
    assert "line one\nline two" in result.text
