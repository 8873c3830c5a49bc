"""Build a larger multistream dump for benchmarks by repeating the bundled pages.

The bundled dump (mirror/enwiki/20160501, 206 pages, 6.1 MB of XML) is too
small to time an extractor: start-up dominates. This script writes every one
of its pages, redirects and the one non-article page included, once per copy,
until the XML reaches --min-mb megabytes (10^6 bytes). Copy k (k = 1, 2, ...)
gets:

- the title `<original title> (copy k)`,
- page id `original + k * page_stride` and revision id
  `original + k * revision_stride`, where each stride is the smallest power
  of ten above every id of that kind in the bundled dump, so ids stay unique.

Everything else (siteinfo, text, timestamps, contributors, redirect targets)
is kept byte for byte, so every copy parses exactly like its original. The
pages are written with pipeline.multistream.build_multistream, 100 pages per
stream, with the index beside the dump:

    .venv/bin/python scripts/make_benchmark_dump.py --output-dir bench/dump

writes bench/dump/enwikicopies-20160501-pages-articles-multistream.xml.bz2
and ...-multistream-index.txt.bz2. The output is deterministic: the same
source and --min-mb give the same bytes. The text is Wikipedia's, under
CC BY-SA, like the bundled dump.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import logging
import math
import re
import sys
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.multistream import build_multistream  # noqa: E402  (needs the repository on sys.path)

log = logging.getLogger("make_benchmark_dump")

BUNDLED_DUMP = REPO / "mirror" / "enwiki" / "20160501" / "enwiki-20160501-pages-articles-multistream.xml.bz2"
DUMP_NAME = "enwikicopies-20160501-pages-articles-multistream.xml.bz2"
INDEX_NAME = "enwikicopies-20160501-pages-articles-multistream-index.txt.bz2"
PAGES_PER_STREAM = 100

# The page's own <id> is the first <id> in a <page>; the revision's is the
# first <id> after <revision>. Contributor ids come later and stay as they are.
PAGE_TITLE = re.compile(rb"(<title>)(.*?)(</title>)")
PAGE_ID = re.compile(rb"(<id>)(\d+)(</id>)")
REVISION_ID = re.compile(rb"(<revision>\s*<id>)(\d+)(</id>)")


def split_pages(xml: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Split dump XML into the header, each <page>...</page> block with its line ends, and the footer.

    Raises ValueError when the XML has no pages or a page is not closed.
    """
    first = xml.find(b"  <page>")
    last = xml.rfind(b"</page>")
    if first < 0 or last < 0:
        raise ValueError("no <page> element found: is this a MediaWiki XML dump?")
    last = xml.index(b"\n", last) + 1
    header, body, footer = xml[:first], xml[first:last], xml[last:]

    pages = [b"  <page>" + block for block in body.split(b"  <page>")[1:]]
    for page in pages:
        if b"</page>" not in page:
            raise ValueError(f"a page is not closed: {page[:120]!r}")
    return header, pages, footer


def id_stride(pages: list[bytes], pattern: re.Pattern[bytes]) -> int:
    """Return the smallest power of ten greater than every id `pattern` finds in `pages`."""
    largest = 0
    for page in pages:
        match = pattern.search(page)
        if match is None:
            raise ValueError(f"a page has no id for {pattern.pattern!r}: {page[:120]!r}")
        largest = max(largest, int(match.group(2)))
    return 10 ** len(str(largest))


def renumber(page: bytes, copy: int, page_stride: int, revision_stride: int) -> bytes:
    """Return `page` as copy number `copy`: new title, page id and revision id."""
    suffix = b" (copy %d)" % copy
    page = PAGE_TITLE.sub(lambda m: m.group(1) + m.group(2) + suffix + m.group(3), page, count=1)
    page = PAGE_ID.sub(lambda m: b"%s%d%s" % (m.group(1), int(m.group(2)) + copy * page_stride, m.group(3)), page, count=1)
    page = REVISION_ID.sub(lambda m: b"%s%d%s" % (m.group(1), int(m.group(2)) + copy * revision_stride, m.group(3)), page, count=1)
    return page


def copied_lines(header: bytes, pages: list[bytes], footer: bytes, copies: int) -> Iterator[bytes]:
    """Yield the lines of a dump holding `copies` renumbered copies of `pages`."""
    page_stride = id_stride(pages, PAGE_ID)
    revision_stride = id_stride(pages, REVISION_ID)
    log.info("Page ids step by %d per copy, revision ids by %d", page_stride, revision_stride)

    yield from header.splitlines(keepends=True)
    for copy in range(1, copies + 1):
        for page in pages:
            yield from renumber(page, copy, page_stride, revision_stride).splitlines(keepends=True)
        log.info("Copy %d of %d laid out", copy, copies)
    yield from footer.splitlines(keepends=True)


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=BUNDLED_DUMP, help="bzip2 dump whose pages are repeated (default: the bundled dump)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench" / "dump", help="folder for the dump and its index (default: bench/dump)")
    parser.add_argument("--min-mb", type=float, default=50.0, help="smallest size of the XML in MB of 10^6 bytes (default: 50)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if not arguments.source.is_file():
        parser.error(f"source dump not found: {arguments.source}")
    if arguments.min_mb <= 0:
        parser.error(f"--min-mb must be positive, got {arguments.min_mb}")

    log.info("Reading %s", arguments.source)
    with bz2.open(arguments.source, "rb") as stream:
        xml = stream.read()
    try:
        header, pages, footer = split_pages(xml)
    except ValueError as error:
        parser.error(f"{arguments.source}: {error}")
    page_bytes = sum(len(page) for page in pages)

    # Renaming adds a few bytes per page, so counting the originals' size is a safe lower bound.
    copies = max(1, math.ceil((arguments.min_mb * 1e6 - len(header) - len(footer)) / page_bytes))
    log.info("%d pages, %.1f MB of page XML: writing %d copies", len(pages), page_bytes / 1e6, copies)

    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    dump = arguments.output_dir / DUMP_NAME
    index = arguments.output_dir / INDEX_NAME
    try:
        written = build_multistream(copied_lines(header, pages, footer, copies), dump, index, PAGES_PER_STREAM)
    except ValueError as error:
        parser.error(f"{arguments.source}: {error}")

    with bz2.open(dump, "rb") as stream:
        xml_bytes = sum(len(block) for block in iter(lambda: stream.read(1 << 20), b""))
    log.info("Wrote %d pages, %.1f MB of XML (%.1f MB compressed) to %s", written, xml_bytes / 1e6, dump.stat().st_size / 1e6, dump)
    log.info("sha1 %s  %s", sha1_of(dump), dump.name)
    log.info("sha1 %s  %s", sha1_of(index), index.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
