"""Reading pages from dump files: filtering, failure counting and unreadable files."""

from __future__ import annotations

import bz2

import pytest

from pipeline.extract import ExtractionError, ExtractionStats, article_url, iter_articles

from conftest import BUNDLED_DUMP

SITE = "https://en.wikipedia.org/wiki/Main_Page"


def _failing_on(title_text: str):
    """Return a converter factory whose converter raises on pages containing `title_text`."""
    from pipeline.wikitext import WikitextConverter

    def factory(namespaces):
        converter = WikitextConverter(namespaces)

        def convert(wikitext: str) -> str:
            if title_text in wikitext:
                raise RecursionError("maximum recursion depth exceeded")
            return converter.to_text(wikitext)

        return convert

    return factory


def test_page_that_raises_is_counted_not_fatal():
    stats = ExtractionStats()
    articles = list(iter_articles([BUNDLED_DUMP], stats, SITE, converter_factory=_failing_on("'''Albedo'''")))
    assert stats.failed == {"RecursionError": 1}
    assert stats.failed_examples["RecursionError"] == [39]
    assert stats.articles == len(articles) == 105
    assert "Albedo" not in {article.title for article in articles}


def _write_bz2(path, data: bytes):
    path.write_bytes(bz2.compress(data))
    return path


def test_truncated_dump_names_file_and_last_page(tmp_path):
    xml = bz2.decompress(BUNDLED_DUMP.read_bytes())
    truncated = _write_bz2(tmp_path / "truncated.xml.bz2", xml[: len(xml) // 2])
    stats = ExtractionStats()
    with pytest.raises(ExtractionError, match=r"truncated\.xml\.bz2: failed to read the dump after page \d+"):
        list(iter_articles([truncated], stats, SITE))
    assert stats.articles > 0


def test_file_that_is_not_xml(tmp_path):
    not_xml = _write_bz2(tmp_path / "notes.xml.bz2", b"just some text, not a dump\n")
    with pytest.raises(ExtractionError, match="notes.xml.bz2"):
        list(iter_articles([not_xml], ExtractionStats(), SITE))


def test_skips_counted_by_reason(tmp_path):
    xml = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo><sitename>W</sitename><dbname>testwiki</dbname><base>https://test.example.org/wiki/Main</base>
    <namespaces><namespace key="0" case="first-letter" /><namespace key="10" case="first-letter">Template</namespace></namespaces>
  </siteinfo>
  <page><title>Kept</title><ns>0</ns><id>1</id><revision><id>11</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">Kept text.</text></revision></page>
  <page><title>Template:X</title><ns>10</ns><id>2</id><revision><id>12</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">x</text></revision></page>
  <page><title>Old</title><ns>0</ns><id>3</id><redirect title="Kept" /><revision><id>13</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">#REDIRECT [[Kept]]</text></revision></page>
  <page><title>Module</title><ns>0</ns><id>4</id><revision><id>14</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>Scribunto</model><format>text/plain</format><text xml:space="preserve">return {}</text></revision></page>
  <page><title>Empty</title><ns>0</ns><id>5</id><revision><id>15</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>wikitext</model><format>text/x-wiki</format><text bytes="0" /></revision></page>
  <page><title>Markup only</title><ns>0</ns><id>6</id><revision><id>16</id><timestamp>2020-01-02T03:04:05Z</timestamp>
    <model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">{{Stub}}</text></revision></page>
</mediawiki>
"""
    stats = ExtractionStats()
    articles = list(iter_articles([_write_bz2(tmp_path / "small.xml.bz2", xml.encode())], stats, SITE))
    assert [article.title for article in articles] == ["Kept"]
    assert articles[0].url == "https://test.example.org/wiki/Kept"
    assert articles[0].timestamp.isoformat() == "2020-01-02T03:04:05+00:00"
    assert articles[0].revision_id == 11
    assert stats.skipped == {"namespace": 1, "redirect": 1, "content_model": 1, "empty_wikitext": 1, "empty_text": 1}


@pytest.mark.parametrize("title, expected", [
    ("Anarchism", "https://en.wikipedia.org/wiki/Anarchism"),
    ("AC/DC", "https://en.wikipedia.org/wiki/AC/DC"),
    ("Café de Flore", "https://en.wikipedia.org/wiki/Caf%C3%A9_de_Flore"),
    ("What? (song)", "https://en.wikipedia.org/wiki/What%3F_(song)"),
])
def test_article_url(title, expected):
    assert article_url(SITE, title) == expected
