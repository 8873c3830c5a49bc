"""Reading pages from dump files: filtering, failure counting and unreadable files."""

from __future__ import annotations

import bz2

import pytest

from pipeline.extract import ExtractionError, ExtractionStats, article_url, collect_templates, iter_articles

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP

SITE = "https://en.wikipedia.org/wiki/Main_Page"


def _failing_on(title_text: str):
    """Return a converter factory whose converter raises on pages containing `title_text`."""
    from pipeline.wikitext import WikitextConverter

    def factory(namespaces, templates=None, keep_disambiguation=False):
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
    assert stats.failed_pages["RecursionError"] == [39]
    assert stats.articles == len(articles) == BUNDLED_ARTICLES - 1
    assert "Albedo" not in {article.title for article in articles}


def _write_bz2(path, data: bytes):
    path.write_bytes(bz2.compress(data))
    return path


def test_truncated_dump_names_file_and_last_page(tmp_path):
    xml = bz2.decompress(BUNDLED_DUMP.read_bytes())
    truncated = _write_bz2(tmp_path / "truncated.xml.bz2", xml[: len(xml) // 2])
    stats = ExtractionStats()
    with pytest.raises(ExtractionError, match=r"truncated\.xml\.bz2: truncated: the XML ends inside the <page> element that starts at decompressed byte \d+"):
        list(iter_articles([truncated], stats, SITE))
    assert stats.articles > 0


def test_file_that_is_not_xml(tmp_path):
    not_xml = _write_bz2(tmp_path / "notes.xml.bz2", b"just some text, not a dump\n")
    with pytest.raises(ExtractionError, match="notes.xml.bz2: not a MediaWiki XML dump"):
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


def _json_lines(folder):
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("wiki_*")))


def _cli(*arguments, cwd=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pipeline.extract", *map(str, arguments)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_output_identical_for_any_process_count(tmp_path):
    outputs = {}
    for processes in (1, 2, 3):
        result = _cli(BUNDLED_DUMP, "-o", tmp_path / str(processes), "--json", "--processes", processes, "-b", "200K", "-q")
        assert result.returncode == 0, result.stderr
        outputs[processes] = _json_lines(tmp_path / str(processes))
    assert outputs[1] == outputs[2] == outputs[3]
    assert outputs[1].count(b"\n") == BUNDLED_ARTICLES


def test_file_without_index_gives_same_articles(tmp_path):
    single = tmp_path / "enwiki-20160501-pages-articles.xml.bz2"
    single.write_bytes(bz2.compress(bz2.decompress(BUNDLED_DUMP.read_bytes())))
    with_index = list(iter_articles([BUNDLED_DUMP], ExtractionStats(), SITE, processes=2))
    without_index = list(iter_articles([single], ExtractionStats(), SITE, processes=2, pages_per_chunk=30))
    assert without_index == with_index


def test_truncated_multistream_writes_pages_before_fault(tmp_path):
    from pipeline.extract import index_path

    truncated = tmp_path / BUNDLED_DUMP.name
    data = BUNDLED_DUMP.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.8)])
    (tmp_path / index_path(BUNDLED_DUMP).name).write_bytes(index_path(BUNDLED_DUMP).read_bytes())

    result = _cli(truncated, "-o", tmp_path / "out", "--json")
    assert result.returncode == 1
    assert "truncated" in result.stderr
    assert truncated.name in result.stderr
    written = _json_lines(tmp_path / "out").count(b"\n")
    assert 0 < written < BUNDLED_ARTICLES


def test_missing_file_exits_one(tmp_path):
    result = _cli(tmp_path / "nothing.xml.bz2", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "Dump file not found" in result.stderr


def test_doc_format_to_stdout(tmp_path):
    result = _cli(BUNDLED_DUMP, "-o", "-", "-q", "--processes", "1")
    assert result.returncode == 0
    assert result.stdout.startswith('<doc id="12" url="https://en.wikipedia.org/wiki/Anarchism" title="Anarchism">\nAnarchism\n\n')
    assert result.stdout.count("</doc>\n") == BUNDLED_ARTICLES


def test_parquet_output(tmp_path):
    import pyarrow.parquet as pq

    result = _cli(BUNDLED_DUMP, "-o", tmp_path, "--parquet", "-b", "1M", "-q")
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.rglob("wiki_*.parquet"))
    assert len(files) > 1
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in files) == BUNDLED_ARTICLES


@pytest.mark.parametrize("size", ["0", "1X", "-5"])
def test_invalid_size_is_usage_error(tmp_path, size):
    result = _cli(BUNDLED_DUMP, "-o", tmp_path, "-b", size)
    assert result.returncode == 2
    assert "invalid size" in result.stderr or "expected one argument" in result.stderr


def test_size_budget_skips_and_records_page(tmp_path):
    from pipeline.extract import Budget

    stats = ExtractionStats()
    articles = list(iter_articles([BUNDLED_DUMP], stats, SITE, budget=Budget(max_page_bytes=150_000)))
    over = stats.failed["over_size_budget"]
    assert over > 0
    assert len(articles) == BUNDLED_ARTICLES - over
    assert len(stats.failed_pages["over_size_budget"]) == over


def test_time_budget_skips_slow_page(tmp_path):
    from pipeline.extract import Budget
    from pipeline.wikitext import WikitextConverter

    def slow_on_albedo(namespaces, templates=None, keep_disambiguation=False):
        converter = WikitextConverter(namespaces)

        def convert(wikitext):
            if "'''Albedo'''" in wikitext:
                while True:
                    sum(range(1000))
            return converter.to_text(wikitext)

        return convert

    stats = ExtractionStats()
    articles = list(iter_articles([BUNDLED_DUMP], stats, SITE, converter_factory=slow_on_albedo,
                                  budget=Budget(max_page_seconds=0.5)))
    assert stats.failed_pages == {"over_time_budget": [39]}
    assert len(articles) == BUNDLED_ARTICLES - 1


def _xml_cases():
    import json

    from conftest import DATA

    for line in (DATA / "extraction-cases.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["input_kind"] == "xml":
            path = DATA / "cases" / case["input_file"].removeprefix("inputs/")
            yield pytest.param(path, json.loads(case["expected"]), case["id"], id=case["id"])


@pytest.mark.parametrize("path, expected, case_id", list(_xml_cases()))
def test_xml_case(path, expected, case_id):
    stats = ExtractionStats()
    articles = []
    error = None
    try:
        # Templates defined in the dump itself are expanded, as the pipeline does by default.
        for article in iter_articles([path], stats, SITE, templates=collect_templates([path])):
            articles.append({"title": article.title, "text": " ".join(article.text.split())})
    except ExtractionError as raised:
        error = str(raised)

    assert articles == [{"title": item["title"], "text": " ".join(item["text"].split())} for item in expected]
    if case_id.startswith("sling225"):
        # A truncated file is reported loudly, after the complete pages.
        assert error is not None and "truncated" in error
    else:
        assert error is None


@pytest.mark.parametrize("processes", [1, 2])
def test_truncated_single_stream_file(tmp_path, processes):
    data = bz2.compress(bz2.decompress(BUNDLED_DUMP.read_bytes()))
    truncated = _write_bz2(tmp_path / "cut.xml.bz2", b"")
    truncated.write_bytes(data[: len(data) // 2])
    stats = ExtractionStats()
    articles = []
    with pytest.raises(ExtractionError, match="cut.xml.bz2: failed to decompress after"):
        for article in iter_articles([truncated], stats, SITE, processes=processes):
            articles.append(article)
    assert 0 < len(articles) < BUNDLED_ARTICLES


def test_invalid_utf8_names_file_and_position(tmp_path):
    xml = bz2.decompress(BUNDLED_DUMP.read_bytes())
    cut = xml.index(b"'''Albedo'''")
    broken = _write_bz2(tmp_path / "broken.xml.bz2", xml[:cut] + b"\xff\xfe" + xml[cut:])
    result = _cli(broken, "-o", tmp_path / "out", "--json", "--processes", "1")
    assert result.returncode == 1
    assert "broken.xml.bz2: invalid XML" in result.stderr
    assert "after page" in result.stderr
    written = _json_lines(tmp_path / "out").count(b"\n")
    assert 0 < written < BUNDLED_ARTICLES


def test_output_files_stay_within_size(tmp_path):
    result = _cli(BUNDLED_DUMP, "-o", tmp_path, "--json", "-b", "300K", "-q")
    assert result.returncode == 0, result.stderr
    sizes = [path.stat().st_size for path in tmp_path.rglob("wiki_*")]
    largest_article = max(len(line) for path in tmp_path.rglob("wiki_*") for line in path.read_bytes().splitlines(True))
    assert len(sizes) > 1
    assert all(size <= max(300 * 1024, largest_article) for size in sizes)


def test_folder_given_as_dump_is_clear(tmp_path):
    result = _cli(BUNDLED_DUMP.parent, "-o", tmp_path / "out", "-q")
    assert result.returncode == 1
    assert "Not a file" in result.stderr
    assert "Traceback" not in result.stderr
