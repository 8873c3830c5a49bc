"""The multistream layout of Wikimedia's pages-articles dumps.

A multistream file is a concatenation of independent bzip2 streams:

    stream 0        <mediawiki ...><siteinfo>...</siteinfo>     (header, not indexed)
    stream 1        <page>...</page> x 100
    stream 2        <page>...</page> x 100
    ...
    stream n        </mediawiki>                                 (footer)
    stream n+1      empty

and the index file (itself bzip2) has one line per page,
`<byte offset of its stream>:<page id>:<title>`, with the title XML-escaped
exactly as it appears in the dump. Any bzip2 reader decodes the whole file as
one document; the offsets let a reader seek to a single stream.

`build_multistream` writes this layout the way Wikimedia's recompressxml does
(line-based, 100 pages per stream by default). `read_index` parses an index.
"""

from __future__ import annotations

import bz2
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

PAGE_ID = re.compile(rb"<id>(\d+)</id>")
PAGE_TITLE = re.compile(rb"<title>(.*?)</title>")


@dataclass(frozen=True)
class IndexEntry:
    """One line of a multistream index: where a page's stream starts."""

    offset: int
    page_id: int
    title: str


def split_dump(lines: Iterable[bytes]) -> tuple[bytes, list[bytes], bytes]:
    """Split dump XML lines into the header, the page elements and the footer."""
    header: list[bytes] = []
    pages: list[bytes] = []
    footer: list[bytes] = []
    current: list[bytes] | None = None
    for line in lines:
        stripped = line.strip()
        if current is not None:
            current.append(line)
            if stripped == b"</page>":
                pages.append(b"".join(current))
                current = None
        elif stripped == b"<page>":
            current = [line]
        elif pages:
            footer.append(line)
        else:
            header.append(line)
    if current is not None:
        raise ValueError("The dump ends inside a <page> element: the input XML is truncated.")
    return b"".join(header), pages, b"".join(footer)


def build_multistream(source_xml: Iterable[bytes], output: Path, index: Path, pages_per_stream: int = 100) -> int:
    """Write `source_xml` (dump XML lines) as a multistream file and its index.

    Returns the number of pages written. Both files are bzip2 at level 9, like
    Wikimedia's. Raises ValueError on a truncated dump or a page without an id.
    """
    if pages_per_stream < 1:
        raise ValueError(f"pages_per_stream must be at least 1, got {pages_per_stream}")
    header, pages, footer = split_dump(source_xml)

    index_lines: list[bytes] = []
    with open(output, "wb") as stream:
        stream.write(bz2.compress(header, 9))
        for start in range(0, len(pages), pages_per_stream):
            offset = stream.tell()
            group = pages[start:start + pages_per_stream]
            for page in group:
                page_id = PAGE_ID.search(page)
                title = PAGE_TITLE.search(page)
                if page_id is None or title is None:
                    raise ValueError(f"A page near byte offset {offset} has no <id> or <title>.")
                index_lines.append(b"%d:%s:%s\n" % (offset, page_id.group(1), title.group(1)))
            stream.write(bz2.compress(b"".join(group), 9))
        stream.write(bz2.compress(footer, 9))
        stream.write(bz2.compress(b"", 9))

    index.write_bytes(bz2.compress(b"".join(index_lines), 9))
    return len(pages)


def read_index(path: Path) -> Iterator[IndexEntry]:
    """Yield the entries of a bzip2 multistream index, in file order.

    Titles may contain colons, so each line is split at its first two colons
    only, and XML escapes in titles are decoded.
    """
    with bz2.open(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split(":", 2)
            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                raise ValueError(f"{path}, line {number}: expected 'offset:page_id:title', got {line[:80]!r}")
            yield IndexEntry(offset=int(parts[0]), page_id=int(parts[1]), title=html.unescape(parts[2]))


def stream_offsets(path: Path) -> list[int]:
    """Return the distinct stream offsets of an index, ascending."""
    return sorted({entry.offset for entry in read_index(path)})


def expected_index_name(dump_name: str) -> Optional[str]:
    """Return the file name that Wikimedia gives the index of a multistream dump, or None if it is not one.

    x-multistream.xml.bz2 -> x-multistream-index.txt.bz2, and
    x-multistream3.xml-p1p41242.bz2 -> x-multistream-index3.txt-p1p41242.bz2.
    """
    if "-multistream" not in dump_name or ".xml" not in dump_name:
        return None
    stem, _, rest = dump_name.partition(".xml")
    base, _, part = stem.partition("-multistream")
    return f"{base}-multistream-index{part}.txt{rest}"


class StreamError(RuntimeError):
    """A byte range of a multistream file does not decompress to whole bzip2 streams."""


def page_ranges(offsets: list[int], file_size: int, streams_per_range: int) -> list[tuple[int, int]]:
    """Group consecutive page streams into byte ranges [start, end) of a multistream file.

    `offsets` are the indexed stream starts, ascending. The last range runs to
    the end of the file, so it also contains the footer stream, which decodes to
    no pages. Each range decodes independently of the others:

        file   [header][s1][s2][s3][s4][s5][footer][empty]
        ranges         [s1  s2][s3  s4][s5 footer empty]     streams_per_range=2
    """
    if streams_per_range < 1:
        raise ValueError(f"streams_per_range must be at least 1, got {streams_per_range}")
    if not offsets:
        return []
    starts = offsets[::streams_per_range]
    return list(zip(starts, [*starts[1:], file_size]))


def decompress_range(data: bytes, start: int) -> tuple[bytes, Optional[str]]:
    """Decompress the concatenated bzip2 streams in `data`, which begins at file offset `start`.

    Returns the decompressed bytes and None, or the bytes decoded before a
    fault and a message naming its byte offset (a truncated or corrupt file).
    """
    pieces: list[bytes] = []
    position = 0
    while position < len(data):
        decompressor = bz2.BZ2Decompressor()
        try:
            pieces.append(decompressor.decompress(data[position:]))
        except OSError as error:
            return b"".join(pieces), f"corrupt bzip2 stream at byte {start + position}: {error}"
        if not decompressor.eof:
            return b"".join(pieces), f"truncated bzip2 stream at byte {start + position}: the file ends inside it"
        position = len(data) - len(decompressor.unused_data)
    return b"".join(pieces), None


def read_header(path: Path, first_offset: int) -> bytes:
    """Return the decompressed header stream (<mediawiki> and <siteinfo>) of a multistream file."""
    with open(path, "rb") as stream:
        data = stream.read(first_offset)
    header, error = decompress_range(data, 0)
    if error:
        raise StreamError(f"{path}: {error}")
    return header
