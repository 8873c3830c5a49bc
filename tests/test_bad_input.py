"""Dump files that are unusual or broken: each is either read correctly or fails with ExtractionError naming where.

Every input is built from real pages (the bundled English dump, the Greek
Wikivoyage files and the UTF-16 Bulgarian dump in tests/data) and read by
the real reader and parser.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
import subprocess
import sys

import pytest

from pipeline.extract import ExtractionError, ExtractionStats, iter_articles

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP, BUNDLED_SKIPPED, DATA, REPO

SITE = "https://en.wikipedia.org/wiki/Main_Page"
BGWIKI = DATA / "bgwiki-sample-utf16-pages-articles.xml.bz2"
ELWIKIVOYAGE = DATA / "elwikivoyage-pages-articles-p2566p2583.xml.bz2"
BUNDLED_XML = bz2.decompress(BUNDLED_DUMP.read_bytes())


def _read(path, processes=1, pages_per_chunk=1000):
    """Return (articles, stats, error message or None) of reading `path` to its end or its fault."""
    stats = ExtractionStats()
    articles = []
    try:
        for article in iter_articles([path], stats, SITE, processes=processes, pages_per_chunk=pages_per_chunk):
            articles.append(article)
    except ExtractionError as error:
        return articles, stats, str(error)
    return articles, stats, None


def _bz2(path, data: bytes):
    path.write_bytes(bz2.compress(data))
    return path


def _cli(*arguments):
    return subprocess.run([sys.executable, "-m", "pipeline.extract", *map(str, arguments)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


# Encodings other than UTF-8.

def _bgwiki_text() -> str:
    return bz2.decompress(BGWIKI.read_bytes()).decode("utf-16")


def test_utf16_with_bom_is_read_correctly():
    articles, stats, error = _read(BGWIKI)
    assert error is None
    assert [article.title for article in articles] == ["Григориански календар"]
    assert articles[0].page_id == 558
    assert articles[0].text.startswith("Григорианският календар (понякога наричан и Грегориански календар")
    assert stats.skipped == {"namespace": 2}


@pytest.mark.parametrize("encoding, mark, declaration, compress", [
    ("utf-16-le", b"\xff\xfe", "", True),
    ("utf-16-be", b"\xfe\xff", "", True),
    ("utf-16-le", b"", "", True),  # no byte order mark: recognised by the zero byte after "<"
    ("utf-16-le", b"\xff\xfe", '<?xml version="1.0" encoding="UTF-16"?>\n', True),
    ("utf-32-le", b"\xff\xfe\x00\x00", "", True),
    ("utf-8", b"\xef\xbb\xbf", '<?xml version="1.0" encoding="UTF-8"?>\n', True),
    ("utf-16-le", b"\xff\xfe", '<?xml version="1.0" encoding="UTF-16"?>\n', False),
])
def test_unicode_encodings_read_like_utf8(tmp_path, encoding, mark, declaration, compress):
    text = _bgwiki_text()
    expected, expected_stats, _ = _read(_bz2(tmp_path / "utf8.xml.bz2", text.encode("utf-8")))
    data = mark + (declaration + text).encode(encoding)
    if compress:
        path = _bz2(tmp_path / "other.xml.bz2", data)
    else:
        path = tmp_path / "other.xml"
        path.write_bytes(data)
    for processes in (1, 2):
        articles, stats, error = _read(path, processes)
        assert error is None
        assert articles == expected
        assert len(articles) == 1
        assert stats.to_dict() == expected_stats.to_dict()


def _declared(xml: bytes, encoding: str) -> bytes:
    """Return `xml` re-encoded as `encoding` behind a declaration naming it.

    Characters the encoding lacks become character references, which the
    parser turns back into the same characters, so the articles must not change.
    """
    text = xml.decode("utf-8")
    return f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii") + text.encode(encoding, "xmlcharrefreplace")


@pytest.mark.parametrize("source, encoding", [
    (BUNDLED_DUMP, "ISO-8859-1"),
    (ELWIKIVOYAGE, "ISO-8859-7"),
    (ELWIKIVOYAGE, "windows-1253"),
])
def test_declared_single_byte_encoding_is_read_correctly(tmp_path, source, encoding):
    xml = bz2.decompress(source.read_bytes())
    expected, expected_stats, _ = _read(_bz2(tmp_path / "utf8.xml.bz2", xml))
    path = _bz2(tmp_path / "declared.xml.bz2", _declared(xml, encoding))
    articles, stats, error = _read(path)
    assert error is None
    assert articles == expected
    assert articles
    assert stats.to_dict() == expected_stats.to_dict()


def test_declared_unknown_encoding_fails_clearly(tmp_path):
    path = _bz2(tmp_path / "odd.xml.bz2", b'<?xml version="1.0" encoding="x-no-such-encoding"?>\n' + BUNDLED_XML)
    articles, _, error = _read(path)
    assert articles == []
    assert error.startswith(f"{path}: the XML declaration names the encoding 'x-no-such-encoding'")


def test_invalid_utf16_names_file_and_byte(tmp_path):
    text = _bgwiki_text()
    data = b"\xff\xfe" + text.encode("utf-16-le")
    cut = data.index("Уикипедия:Редактиране".encode("utf-16-le"))
    # A lone low surrogate is never valid UTF-16.
    path = _bz2(tmp_path / "bad16.xml.bz2", data[:cut] + b"\x00\xdc" + data[cut:])
    articles, _, error = _read(path)
    assert [article.page_id for article in articles] == [558]
    assert error == f"{path}: the XML is not valid utf-16-le at decompressed byte {cut}: illegal encoding (1 complete pages before it)"


# Invalid UTF-8 names the page it is in.

def test_invalid_utf8_names_page(tmp_path):
    cut = BUNDLED_XML.index(b"'''Albedo'''")
    path = _bz2(tmp_path / "broken.xml.bz2", BUNDLED_XML[:cut] + b"\xff\xfe" + BUNDLED_XML[cut:])
    articles, _, error = _read(path)
    assert error.startswith(f"{path}: invalid XML in a chunk of pages, page 39, after page 36: ParseError: not well-formed")
    # Every article before the faulty page comes out first.
    expected, _, _ = _read(BUNDLED_DUMP)
    assert articles == [article for article in expected if article.page_id < 39]
    assert articles


# Plain XML, files that are not XML, empty files.

def test_plain_xml_reads_like_bz2(tmp_path):
    path = tmp_path / "enwiki-pages-articles.xml"
    path.write_bytes(BUNDLED_XML)
    expected, _, _ = _read(BUNDLED_DUMP)
    for processes in (1, 2):
        articles, stats, error = _read(path, processes, pages_per_chunk=30)
        assert error is None
        assert articles == expected
        assert len(articles) == BUNDLED_ARTICLES
        assert stats.skipped == BUNDLED_SKIPPED


@pytest.mark.parametrize("name, data, message", [
    ("empty.xml", b"", "empty: the file holds no XML (0 bytes after decompression)"),
    ("empty.xml.bz2", b"", "empty: the file holds no XML (0 bytes after decompression)"),
    ("nothing.xml.bz2", bz2.compress(b""), "empty: the file holds no XML (0 bytes after decompression)"),
    ("index.xml.bz2", (DATA / "elwikivoyage-pages-articles-p2566p2583.multistream-5pps-index.txt.bz2").read_bytes(),
     "not a MediaWiki XML dump: no <mediawiki> element in its first"),
    ("gzipped.xml", gzip.compress(BUNDLED_XML[:200_000], mtime=0), "not a MediaWiki XML dump: no <mediawiki> element in its first"),
    ("one-line.xml", re.sub(rb">\s+<", b"><", BUNDLED_XML),
     "a <page> element at decompressed byte {page} does not begin a line"),
    ("text-between.xml", BUNDLED_XML.replace(b"</page>\n  <page>", b"</page>\n  stray text\n  <page>", 1),
     "unexpected XML outside a <page> element at decompressed byte"),
])
def test_unreadable_file_exits_one_and_names_it(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    result = _cli(path, "-o", tmp_path / "out", "--json", "--processes", "1")
    assert result.returncode == 1
    # The CLI reads the file twice (templates, then articles) and reports the fault of the second read.
    assert f"ERROR pipeline.extract: {path}: {message.format(page=data.find(b'<page>'))}" in result.stderr


# Document type declarations and entities are never expanded or fetched.

_ENTITY_PROBE = """
import json, re, sys
from pipeline.extract import ExtractionError, ExtractionStats, iter_articles
texts, error = [], None
try:
    for article in iter_articles([sys.argv[1]], ExtractionStats(), "https://x.org/wiki/M"):
        texts.append(article.text)
except ExtractionError as raised:
    error = str(raised)
# VmHWM is this process's own peak; getrusage's ru_maxrss would include the parent's peak from before exec.
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())
print(json.dumps({"texts": texts, "error": error, "max_rss_kb": int(peak.group(1))}))
"""

LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))


@pytest.mark.parametrize("doctype, reference, message", [
    ('<!DOCTYPE mediawiki [<!ENTITY lol0 "lol">' + LAUGHS + "]>", "&lol9;", "rejected a document type declaration (<!DOCTYPE)"),
    ('<!DOCTYPE mediawiki [<!ENTITY xxe SYSTEM "file://{secret}">]>', "&xxe;", "rejected a document type declaration (<!DOCTYPE)"),
    ('<!DOCTYPE mediawiki [<!ENTITY % xxe SYSTEM "file://{secret}"> %xxe;]>', "", "rejected a document type declaration (<!DOCTYPE)"),
    ('<!DOCTYPE mediawiki SYSTEM "file://{secret}">', "", "rejected a document type declaration (<!DOCTYPE)"),
    ("", "&xxe;", "invalid XML in a chunk of pages, page 39, after page 36: ParseError: undefined entity:"),
])
def test_entities_are_never_expanded(tmp_path, doctype, reference, message):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-7f3a\n")
    xml = BUNDLED_XML.replace(b"<mediawiki ", doctype.format(secret=secret).encode() + b"\n<mediawiki ", 1)
    xml = xml.replace(b"'''Albedo'''", reference.encode() + b"'''Albedo'''", 1)
    path = _bz2(tmp_path / "entities.xml.bz2", xml)
    result = subprocess.run([sys.executable, "-c", _ENTITY_PROBE, str(path)], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"].startswith(f"{path}: ")
    assert message in report["error"]
    assert "SECRET-MARKER" not in result.stdout + result.stderr
    assert not any("lollol" in text for text in report["texts"])
    # Reading the bundled dump takes well under this. A billion laughs expands to 10**9 copies of "lol", about 3 GB.
    assert report["max_rss_kb"] < 400_000


def _multistream_with_header(tmp_path, header: bytes):
    """Copy the bundled multistream dump and its index with its first stream replaced by `header`."""
    from pipeline.extract import index_path

    index = index_path(BUNDLED_DUMP)
    lines = bz2.decompress(index.read_bytes()).decode("utf-8").splitlines()
    first = int(lines[0].split(":", 1)[0])
    new_first = bz2.compress(header)
    shift = len(new_first) - first
    path = tmp_path / BUNDLED_DUMP.name
    path.write_bytes(new_first + BUNDLED_DUMP.read_bytes()[first:])
    shifted = [f"{int(offset) + shift}:{rest}" for offset, rest in (line.split(":", 1) for line in lines)]
    (tmp_path / index.name).write_bytes(bz2.compress("\n".join(shifted).encode("utf-8") + b"\n"))
    return path, bz2.decompress(BUNDLED_DUMP.read_bytes()[:first])


def test_multistream_doctype_is_rejected(tmp_path):
    _, header = _multistream_with_header(tmp_path, b"")
    path, _ = _multistream_with_header(tmp_path, b'<!DOCTYPE mediawiki [<!ENTITY lol0 "lol">' + LAUGHS.encode() + b"]>\n" + header)
    articles, _, error = _read(path)
    assert articles == []
    assert error.startswith(f"{path}: rejected a document type declaration (<!DOCTYPE) at decompressed byte 0")


def test_multistream_utf16_is_rejected(tmp_path):
    _, header = _multistream_with_header(tmp_path, b"")
    path, _ = _multistream_with_header(tmp_path, b"\xff\xfe" + header.decode("utf-8").encode("utf-16-le"))
    articles, _, error = _read(path)
    assert articles == []
    assert error == (f"{path}: the multistream file is encoded as utf-16-le; its ranges can be read only in UTF-8: "
                     "decompress it and read the .xml file instead, which is transcoded.")


# Export schemas 0.4 (no <ns>) and 0.11 (<origin>, <content>).

def test_schema_04_without_ns_reads_like_010(tmp_path):
    xml = BUNDLED_XML.replace(b"export-0.10", b"export-0.4").replace(b'version="0.10"', b'version="0.4"')
    xml = re.sub(rb"\n\s*<(ns|model|format)>[^<]*</\1>", b"", xml)
    assert b"<ns>" not in xml
    assert b"<model>" not in xml
    expected, expected_stats, _ = _read(BUNDLED_DUMP)
    articles, stats, error = _read(_bz2(tmp_path / "old.xml.bz2", xml))
    assert error is None
    assert articles == expected
    # The namespace-4 redirect is recognised by its "Wikipedia:" prefix and the siteinfo names.
    assert stats.to_dict() == expected_stats.to_dict()


def test_schema_011_with_origin_and_content_slots(tmp_path):
    xml = bz2.decompress(ELWIKIVOYAGE.read_bytes())
    expected, expected_stats, _ = _read(ELWIKIVOYAGE)
    assert xml.count(b"<origin>") == 17
    slot = (b"</text>\n      <content>\n        <role>mediainfo</role>\n        <origin>1</origin>\n"
            b"        <model>wikibase-mediainfo</model>\n        <format>application/json</format>\n"
            b'        <text bytes="2" sha1="phoiac9h4m842xq45sp7s6u21eteeq1" xml:space="preserve">{}</text>\n'
            b"      </content>")
    xml = xml.replace(b'<text xml:space="preserve">', b'<text sha1="x" xml:space="preserve">').replace(b"</text>", slot)
    articles, stats, error = _read(_bz2(tmp_path / "slots.xml.bz2", xml))
    assert error is None
    assert articles == expected
    assert articles
    assert stats.to_dict() == expected_stats.to_dict()


# Deleted or empty text is skipped and counted.

def test_deleted_and_empty_text_are_counted(tmp_path):
    pages = re.split(rb"(?=\n  <page>)", BUNDLED_XML)
    emptied = {}
    replacements = ['<text deleted="deleted" />', '<text bytes="0" />', '<text xml:space="preserve"></text>',
                    '<text xml:space="preserve">  \n </text>']
    expected, _, _ = _read(BUNDLED_DUMP)
    article_ids = [article.page_id for article in expected]
    for replacement, page_id in zip(replacements, article_ids[::10]):
        number = next(i for i, page in enumerate(pages) if f"<id>{page_id}</id>".encode() in page)
        pages[number] = re.sub(rb'<text xml:space="preserve">.*?</text>', replacement.encode(), pages[number], flags=re.S)
        emptied[page_id] = replacement
    articles, stats, error = _read(_bz2(tmp_path / "deleted.xml.bz2", b"".join(pages)))
    assert error is None
    assert [article.page_id for article in articles] == [i for i in article_ids if i not in emptied]
    assert stats.skipped == {**BUNDLED_SKIPPED, "empty_wikitext": 4}


# Duplicate page ids keep the first copy.

@pytest.mark.parametrize("processes, pages_per_chunk", [(1, 1000), (2, 30)])
def test_duplicate_page_id_keeps_first(tmp_path, processes, pages_per_chunk):
    start = BUNDLED_XML.index(b"  <page>\n    <title>Albedo</title>")
    end = BUNDLED_XML.index(b"</page>", start) + len(b"</page>\n")
    copy = BUNDLED_XML[start:end].replace(b"'''Albedo'''", b"'''Second copy'''")
    footer = BUNDLED_XML.rindex(b"</mediawiki>")
    path = _bz2(tmp_path / "twice.xml.bz2", BUNDLED_XML[:footer] + copy + BUNDLED_XML[footer:])
    expected, _, _ = _read(BUNDLED_DUMP)
    articles, stats, error = _read(path, processes, pages_per_chunk)
    assert error is None
    assert articles == expected
    assert stats.skipped == {**BUNDLED_SKIPPED, "duplicate_page_id": 1}
    assert stats.pages == 207
    assert stats.articles == BUNDLED_ARTICLES
    assert stats.characters == sum(len(article.text) for article in expected)


def test_duplicate_page_ids_across_files(tmp_path):
    copy = tmp_path / "copy.xml.bz2"
    copy.write_bytes(bz2.compress(BUNDLED_XML))
    stats = ExtractionStats()
    articles = list(iter_articles([BUNDLED_DUMP, copy], stats, SITE))
    assert len(articles) == BUNDLED_ARTICLES
    assert stats.skipped["duplicate_page_id"] == BUNDLED_ARTICLES


def test_dump_without_siteinfo_tables_dropped():
    """A real export without <siteinfo>: read with the canonical namespaces, tables left out."""
    stats = ExtractionStats()
    articles = list(iter_articles([DATA / "enwiki-2017-tables-pages-articles.xml.bz2"], stats, "https://en.wikipedia.org/wiki/"))
    assert len(articles) == 5
    assert "Economy of Estonia" in {article.title for article in articles}
    text = "\n".join(article.text for article in articles)
    for residue in ("{|", "|-", "||", "!!", "rowspan", "colspan", "class="):
        assert residue not in text, residue
