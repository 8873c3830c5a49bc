"""Stream the pages of dump files and turn articles into plain text, in parallel.

An article is a page in namespace 0 that is not a redirect and whose latest
revision is wikitext with text. Every other page is skipped and counted by
reason. A page whose conversion raises, or that passes the size or time
budget, is skipped and counted by reason with its page id. Such a page
never stops the run.

Work is cut into jobs that worker processes run independently:

- a multistream file with its index is cut into ranges of whole bzip2
  streams, and each worker reads and decompresses its own range;
- a file without an index is decompressed by one reader (bzip2 blocks in
  parallel threads, with indexed_bzip2), which cuts the XML into chunks of
  whole <page> elements for the workers.

Results come back in job order, so the output is byte-identical whatever the
number of processes. A file that is truncated, corrupt or not MediaWiki XML
stops the run with ExtractionError naming the file and the byte offset, after
every complete page before the fault has been yielded.

Command line, with wikiextractor's options and output layout:

    python -m pipeline.extract DUMP [DUMP ...] -o DIR|- [--json] [-b SIZE] [--processes N] [-q] [--parquet]
"""

from __future__ import annotations

import bz2
import codecs
import collections
import datetime as dt
import html
import io
import logging
import multiprocessing
import os
import re
import signal
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Optional, Sequence

import indexed_bzip2
import mwxml
import pyarrow.parquet as pq

from pipeline.articles import Article
from pipeline.dump_templates import TEMPLATE_NAMESPACE, DumpTemplates
from pipeline.multistream import (StreamError, decompress_range, expected_index_name, page_ranges, read_header, read_index,
                                  stream_offsets)
from pipeline.wikitext import Namespaces, WikitextConverter, interlanguage_prefixes, is_disambiguation, redirect_target

log = logging.getLogger(__name__)

ARTICLE_NAMESPACE = 0
# Page ids are kept for every failed or over-budget page, up to this many per reason.
PAGE_IDS_PER_REASON = 1000
# Maximum streams per job: 10 streams of 100 pages keep a job's memory to a few tens of MB.
STREAMS_PER_RANGE = 10
PAGES_PER_CHUNK = 1000
# A siteinfo header is a few kB; this much XML without a <page> means the file is not a dump.
MAX_HEADER_BYTES = 16 << 20
FOOTER = b"</mediawiki>\n"
PAGE_END = b"</page>"

Progress = Callable[[str, Optional[float]], None]
# Receives a dump's namespaces, its simple templates (or None) and whether to keep
# disambiguation pages, and returns the wikitext-to-text function.
ConverterFactory = Callable[[Namespaces, Optional[DumpTemplates], bool], Callable[[str], str]]


class ExtractionError(RuntimeError):
    """A dump file cannot be read as MediaWiki XML."""


class PageTimeout(Exception):
    """A page took longer than its time budget."""


@dataclass(frozen=True)
class Budget:
    """Limits per page: wikitext size in bytes and conversion time in seconds (None: no limit)."""

    max_page_bytes: Optional[int] = 8_000_000
    max_page_seconds: Optional[float] = 30.0


# Markup that should never survive into the text; the stats count each one's occurrences in the articles.
RESIDUE_MARKERS = ("{{", "}}", "[[", "]]", "<ref", "'''", "{|", "&amp;", "&lt;")


@dataclass
class ExtractionStats:
    """Counts of what happened to every page read, and of markup left in the articles' text."""

    pages: int = 0
    articles: int = 0
    characters: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    failed_pages: dict[str, list[int]] = field(default_factory=dict)
    residues: Counter = field(default_factory=Counter)

    def count_residues(self, text: str) -> None:
        for marker in RESIDUE_MARKERS:
            found = text.count(marker)
            if found:
                self.residues[marker] += found

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def fail(self, reason: str, page_id: int) -> None:
        self.failed[reason] += 1
        page_ids = self.failed_pages.setdefault(reason, [])
        if len(page_ids) < PAGE_IDS_PER_REASON:
            page_ids.append(page_id)

    def merge(self, other: "ExtractionStats") -> None:
        """Add another job's counts to these, warning once for each new failure reason."""
        for reason, count in other.failed.items():
            if not self.failed[reason]:
                log.warning("Skipping pages that fail with %s (first: page %d); counting the rest",
                            reason, other.failed_pages[reason][0])
            self.failed[reason] += count
            page_ids = self.failed_pages.setdefault(reason, [])
            page_ids.extend(other.failed_pages[reason][: PAGE_IDS_PER_REASON - len(page_ids)])
        self.pages += other.pages
        self.articles += other.articles
        self.characters += other.characters
        self.skipped.update(other.skipped)
        self.residues.update(other.residues)

    @classmethod
    def from_dict(cls, counts: dict) -> "ExtractionStats":
        """Return the stats that to_dict() wrote."""
        return cls(pages=counts["pages"], articles=counts["articles"], characters=counts["characters"],
                   skipped=Counter(counts["skipped"]), failed=Counter(counts["failed"]),
                   failed_pages={reason: list(ids) for reason, ids in counts["failed_pages"].items()},
                   residues=Counter(counts.get("residues", {})))

    def to_dict(self) -> dict:
        return {
            "pages": self.pages,
            "articles": self.articles,
            "characters": self.characters,
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "failed_pages": self.failed_pages,
            "residues": {marker: self.residues[marker] for marker in RESIDUE_MARKERS},
        }


def article_url(site_base: str, title: str) -> str:
    """Return the URL of `title` on the wiki whose main page URL is `site_base`.

    The siteinfo <base> element is the main page's URL, such as
    https://en.wikipedia.org/wiki/Main_Page; articles live beside it.
    """
    prefix = site_base.rsplit("/", 1)[0] + "/"
    return prefix + urllib.parse.quote(title.replace(" ", "_"), safe=";:@$!*(),/~'")


def default_converter(namespaces: Namespaces, templates: Optional[DumpTemplates] = None,
                      keep_disambiguation: bool = False) -> Callable[[str], str]:
    return WikitextConverter(namespaces, keep_disambiguation=keep_disambiguation, templates=templates).to_text


# Jobs and what a worker returns for one.


@dataclass(frozen=True)
class Job:
    """Pages for one worker: a byte range of a multistream file, or XML cut by the reader.

    Exactly one of (`start`, `end`) and `xml` is set.
    """

    path: Path
    header: bytes
    start: Optional[int] = None
    end: Optional[int] = None
    xml: Optional[bytes] = None
    compressed_bytes: int = 0


@dataclass
class JobResult:
    articles: list[Article]
    stats: ExtractionStats
    error: Optional[str] = None


def _complete_pages(xml: bytes) -> bytes:
    """Return `xml` cut after its last complete </page>, dropping a footer or a partial page."""
    end = xml.rfind(PAGE_END)
    return xml[: end + len(PAGE_END)] + b"\n" if end >= 0 else b""


def _job_pages(job: Job) -> tuple[bytes, Optional[str]]:
    """Return the whole <page> elements of a job, and a message if its bytes ended in a fault."""
    if job.xml is not None:
        return job.xml, None
    with open(job.path, "rb") as stream:
        stream.seek(job.start)
        data = stream.read(job.end - job.start)
    pages, error = decompress_range(data, job.start)
    return _complete_pages(pages), f"{job.path}: {error}" if error else None


def _job_location(job: Job, last_page_id: Optional[int], current_page_id: Optional[int] = None) -> str:
    """Say where in a job a parse failed: inside which page when known, and after which complete page."""
    where = f"after page {last_page_id}" if last_page_id is not None else "before its first complete page"
    if current_page_id is not None:
        where = f"page {current_page_id}, {where}"
    return f"bytes {job.start}-{job.end}, {where}" if job.start is not None else f"a chunk of pages, {where}"


def _parse_fault(job: Job, last_page_id: Optional[int], current_page_id: Optional[int], error: Exception) -> str:
    # expat's line and column count from the start of the job's XML (header and pages), not the file.
    return (f"{job.path}: invalid XML in {_job_location(job, last_page_id, current_page_id)}: "
            f"{type(error).__name__}: {error} (line and column within this job's XML)")


def run_job(job: Job, default_site_base: str, budget: Budget,
            converter_factory: ConverterFactory = default_converter,
            templates: Optional[DumpTemplates] = None, keep_disambiguation: bool = False) -> JobResult:
    """Extract the articles of one job. A truncated, corrupt or invalid range comes back in `error`, not raised."""
    stats = ExtractionStats()
    articles: list[Article] = []
    pages, error = _job_pages(job)
    if not pages.strip():
        return JobResult(articles, stats, error)

    last_page_id = current_page_id = None
    try:
        dump = mwxml.Dump.from_file(io.BytesIO(job.header + pages + FOOTER))
        names = {namespace.id: namespace.name for namespace in (dump.site_info.namespaces or [])}
        namespaces = Namespaces.for_wiki(dump.site_info.dbname or "", names)
        convert = converter_factory(namespaces, templates, keep_disambiguation)
        # With one known language only its keywords count; otherwise every language's do.
        language = next(iter(namespaces.languages)) if len(namespaces.languages) == 1 else None
        site_base = dump.site_info.base or default_site_base
        for page in dump:
            # The page's id is read before its revisions, so a fault in its text names it.
            current_page_id = page.id
            article = _page_article(page, convert, site_base, stats, budget, language, keep_disambiguation)
            if article is not None:
                articles.append(article)
            last_page_id, current_page_id = current_page_id, None
    except Exception as parse_error:  # mwxml and expat raise many types for malformed XML
        error = error or _parse_fault(job, last_page_id, current_page_id, parse_error)
    return JobResult(articles, stats, error)


def collect_job(job: Job) -> tuple[DumpTemplates, Optional[str]]:
    """Collect the Template-namespace pages of one job; a fault comes back as a message."""
    templates = DumpTemplates()
    pages, error = _job_pages(job)
    if not pages.strip():
        return templates, error
    last_page_id = current_page_id = None
    try:
        for page in mwxml.Dump.from_file(io.BytesIO(job.header + pages + FOOTER)):
            current_page_id = page.id
            revision = None
            for revision in page:
                pass
            if page.namespace == TEMPLATE_NAMESPACE and revision is not None:
                templates.add_page(page.title, revision.text, page.redirect)
            last_page_id, current_page_id = current_page_id, None
    except Exception as parse_error:  # mwxml and expat raise many types for malformed XML
        error = error or _parse_fault(job, last_page_id, current_page_id, parse_error)
    return templates, error


class _Timer:
    """Raise PageTimeout in the main thread when a page runs past its time budget.

    Uses SIGALRM, so it works only in a process's main thread on POSIX; elsewhere
    the time budget is not enforced and only the size budget applies.
    """

    def __init__(self, seconds: Optional[float]):
        self.seconds = seconds
        self.enabled = bool(seconds) and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info):
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _expire(signum, frame):
        raise PageTimeout()


def _page_article(page, convert: Callable[[str], str], site_base: str, stats: ExtractionStats,
                  budget: Budget, language: Optional[str], keep_disambiguation: bool) -> Optional[Article]:
    """Return the article of one page, or None after counting why it was skipped.

    A redirect is recognised by the <redirect> element or, in dumps without
    one, by a #REDIRECT keyword (localized ones included) in the wikitext.
    """
    stats.pages += 1
    revision = None
    for revision in page:
        # pages-articles contains one revision per page. With several, the last is the newest.
        pass

    if page.namespace != ARTICLE_NAMESPACE:
        stats.skip("namespace")
        return None
    if page.redirect is not None:
        stats.skip("redirect")
        return None
    if revision is None:
        stats.skip("no_revision")
        return None
    if revision.model not in (None, "wikitext"):
        stats.skip("content_model")
        return None
    if not revision.text or not revision.text.strip():
        stats.skip("empty_wikitext")
        return None
    if redirect_target(revision.text, language) is not None:
        stats.skip("redirect")
        return None
    if not keep_disambiguation and is_disambiguation(revision.text, language):
        stats.skip("disambiguation")
        return None
    if budget.max_page_bytes is not None and len(revision.text) > budget.max_page_bytes:
        stats.fail("over_size_budget", page.id)
        return None

    try:
        with _Timer(budget.max_page_seconds):
            text = convert(revision.text)
    except PageTimeout:
        stats.fail("over_time_budget", page.id)
        return None
    except Exception as error:  # one bad page must never stop a run over millions; it is counted by type
        stats.fail(type(error).__name__, page.id)
        return None
    if not text:
        stats.skip("empty_text")
        return None

    stats.articles += 1
    stats.characters += len(text)
    seconds = revision.timestamp.unix() if revision.timestamp else 0
    return Article(
        page_id=page.id,
        revision_id=revision.id,
        timestamp=dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc),
        title=page.title,
        url=article_url(site_base, page.title),
        text=text,
    )


# Cutting files into jobs.


def index_path(dump: Path) -> Optional[Path]:
    """Return the multistream index beside `dump`, named by expected_index_name, or None when there is none."""
    name = expected_index_name(dump.name)
    candidate = dump.with_name(name) if name else None
    return candidate if candidate is not None and candidate.exists() else None


def _range_jobs(path: Path, index: Path, streams_per_range: Optional[int], processes: int,
                errors: list[str]) -> Iterator[Job]:
    """Cut an indexed multistream file into jobs of whole streams.

    A range that the index places past the end of the file is recorded in
    `errors` (the file is truncated); the ranges before it are still yielded.
    """
    offsets = stream_offsets(index)
    if not offsets:
        errors.append(f"{index}: the index lists no pages.")
        return
    if streams_per_range is None:
        # At least 8 jobs per worker where the file allows, so that the last job
        # is a small share of the run. Big files get ranges of about 1000 pages.
        streams_per_range = max(1, min(STREAMS_PER_RANGE, len(offsets) // (8 * processes)))
    size = path.stat().st_size
    try:
        header = read_header(path, min(offsets[0], size))
    except StreamError as error:
        errors.append(str(error))
        return
    try:
        encoding, _ = _encoding_of(path, header)
    except _ReadFault as error:
        errors.append(str(error))
        return
    if encoding != "utf-8":
        # Each stream is decompressed and parsed on its own, so a multistream file cannot be transcoded.
        errors.append(f"{path}: the multistream file is encoded as {encoding}; its ranges can be read only in UTF-8: "
                      f"decompress it and read the .xml file instead, which is transcoded.")
        return
    if b"<mediawiki" not in header or b"<siteinfo" not in header:
        errors.append(f"{path}: the first bzip2 stream is not a MediaWiki <siteinfo> header; is this a multistream dump?")
        return
    fault = _header_fault(path, header)
    if fault:
        errors.append(fault)
        return
    for start, end in page_ranges(offsets, max(size, offsets[-1] + 1), streams_per_range):
        if start >= size:
            errors.append(f"{path}: truncated: the index places a stream at byte {start}, but the file has {size} bytes.")
            return
        yield Job(path=path, header=header, start=start, end=min(end, size), compressed_bytes=min(end, size) - start)


def _decompressed(raw: IO[bytes], threads: int) -> IO[bytes]:
    """Return a reader of the XML in `raw`: bzip2 when it starts with bzip2's magic bytes, else as is.

    With several threads, indexed_bzip2 finds the bzip2 blocks itself and
    decompresses them in parallel, so a single-stream file without an index
    is not limited to one core's decompression speed.
    """
    magic = raw.read(3)
    raw.seek(0)
    if magic != b"BZh":
        return io.BufferedReader(_Unclosing(raw))
    if threads > 1:
        return io.BufferedReader(indexed_bzip2.open(raw, parallelization=threads))
    return bz2.open(raw, "rb")


# Byte order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# The XML declaration's encoding pseudo-attribute, in the declaration at the very start.
DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?\sencoding\s*=\s*(["'])([A-Za-z][A-Za-z0-9._-]*)\1""")
SNIFF_BYTES = 4096
TRANSCODE_BLOCK = 1 << 16


class _ReadFault(ValueError):
    """The XML of a file cannot be read as text; the message names the file and the byte offset."""


def _encoding_of(path: Path, head: bytes) -> tuple[str, int]:
    """Return the codec of the XML that starts with `head`, and the length of its byte order mark.

    A byte order mark decides. Without one, UTF-16 is recognised by the zero
    byte before or after the first "<". Otherwise the XML declaration's
    encoding counts, and UTF-8 when there is none. Raises _ReadFault for an encoding Python does not know.
    """
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return encoding, len(mark)
    if head.startswith(b"<\x00"):
        return "utf-16-le", 0
    if head.startswith(b"\x00<"):
        return "utf-16-be", 0
    # The declaration is ASCII, so decoding as Latin-1 reads it in any ASCII-compatible encoding.
    match = DECLARED_ENCODING.match(head.decode("latin-1"))
    if match is None:
        return "utf-8", 0
    try:
        return codecs.lookup(match.group(2)).name, 0
    except LookupError:
        raise _ReadFault(f"{path}: the XML declaration names the encoding {match.group(2)!r}, which Python does "
                         f"not know; convert the file to UTF-8 (for example with iconv) and read it again.") from None


def _declared_utf8(line: str) -> str:
    """Return the first line of a transcoded file with its XML declaration's encoding changed to UTF-8."""
    match = DECLARED_ENCODING.match(line)
    if match is None:
        return line
    return line[: match.start(2)] + "UTF-8" + line[match.end(2):]


def _xml_lines(path: Path, stream: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """Yield the lines of the XML in `stream` as UTF-8, each with the number of bytes it took in `stream`.

    UTF-8 (with or without a byte order mark) passes through unchecked: expat
    checks it in the workers. Any other encoding is decoded here, before the
    XML is cut into pages, since the cutting looks for "<page>" as bytes, and
    the XML declaration is changed to name UTF-8. A byte sequence that is not
    valid in the file's encoding raises _ReadFault with its decompressed byte offset.
    """
    # The first line contains the byte order mark and the XML declaration, if any. In
    # UTF-16 it ends at the first 0x0A byte, which is harmless because the decoder receives every byte.
    head = stream.readline(SNIFF_BYTES)
    encoding, mark = _encoding_of(path, head)
    if encoding == "utf-8":
        if head and not head.endswith(b"\n"):
            head += stream.readline()
        yield head[mark:], len(head)
        for line in stream:
            yield line, len(line)
        return

    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    # Re-encoding each line gives its size in the file; an incremental encoder adds a mark only once.
    encoder = codecs.getincrementalencoder(encoding)()
    offset = mark
    block = head[mark:]
    pending = ""
    first = True
    while True:
        final = not block
        buffered, flag = decoder.getstate()
        try:
            text = decoder.decode(block, final)
            fault = None
        except UnicodeDecodeError as error:
            # error.start counts from the bytes the decoder buffered from the previous block.
            fault = _ReadFault(f"{path}: the XML is not valid {encoding} at decompressed byte "
                               f"{offset - len(buffered) + error.start}: {error.reason}")
            # Decode what comes before the fault again, so that the pages it completes are kept.
            decoder.setstate((buffered, flag))
            text = decoder.decode(block[: max(error.start - len(buffered), 0)], False)
        offset += len(block)
        lines = (pending + text).split("\n")
        pending = lines.pop()
        sources = [line + "\n" for line in lines]
        if final and pending:
            sources.append(pending)
        for source in sources:
            size = len(encoder.encode(source)) + (mark if first else 0)
            yield (_declared_utf8(source) if first else source).encode("utf-8"), size
            first = False
        if fault is not None:
            raise fault
        if final:
            return
        block = stream.read(TRANSCODE_BLOCK)


def _header_fault(path: Path, header: bytes) -> Optional[str]:
    """Return why the XML before the first <page> cannot be a dump header, or None when it can.

    Wikimedia's dumps have no document type declaration. One here could
    declare entities that expat would expand (the "billion laughs" bomb) or
    refer to external files, so the file is rejected before any worker parses it.
    """
    doctype = re.search(rb"<!(DOCTYPE|ENTITY)", header)
    if doctype:
        return (f"{path}: rejected a document type declaration (<!{doctype.group(1).decode()}) at decompressed byte "
                f"{doctype.start()}: MediaWiki dumps contain none, and its entities are never expanded or fetched. "
                f"Remove it and read the file again.")
    if b"<mediawiki" not in header:
        return f"{path}: not a MediaWiki XML dump: no <mediawiki> element in its first {len(header)} bytes."
    page = re.search(rb"<page[\s>]", header)
    if page:
        return (f"{path}: a <page> element at decompressed byte {page.start()} does not begin a line; this reader "
                f"cuts pages at line starts, as Wikimedia writes them: reformat the XML (for example with xmllint --format).")
    return None


class _Unclosing(io.RawIOBase):
    """A view of a file object whose close() leaves the file open, so the caller can still call tell()."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _chunk_jobs(path: Path, pages_per_chunk: int, errors: list[str], threads: int = 1) -> Iterator[Job]:
    """Cut a file without an index into chunks of whole pages, reading it once.

    The XML is transcoded to UTF-8 first when it is in another encoding (see
    _xml_lines). A fault (a truncated or corrupt file, bytes invalid in the
    file's encoding, a header that is not a MediaWiki one, text outside the
    <page> elements) is appended to `errors` after the complete pages before
    it have been yielded as a last chunk.
    """
    header: list[bytes] = []
    chunk: list[bytes] = []
    page_lines: list[bytes] = []
    pages = 0
    in_page = False
    consumed = 0
    seen_pages = 0
    decompressed = 0
    page_start = 0
    header_checked = False
    with open(path, "rb") as raw, _decompressed(raw, threads) as stream:
        try:
            for line, size in _xml_lines(path, stream):
                decompressed += size
                stripped = line.strip()
                if in_page:
                    page_lines.append(line)
                    if stripped.endswith(PAGE_END):
                        chunk.extend(page_lines)
                        page_lines = []
                        in_page = False
                        pages += 1
                        seen_pages += 1
                        if pages == pages_per_chunk:
                            yield Job(path=path, header=b"".join(header), xml=b"".join(chunk), compressed_bytes=raw.tell() - consumed)
                            consumed = raw.tell()
                            chunk, pages = [], 0
                elif stripped.startswith(b"<page>") or stripped == b"<page":
                    if not header_checked:
                        header_checked = True
                        fault = _header_fault(path, b"".join(header))
                        if fault:
                            errors.append(fault)
                            break
                        if not any(b"<siteinfo" in header_line for header_line in header):
                            # Some exports have no <siteinfo>; mwxml needs one, and an empty one
                            # leaves the namespaces to MediaWiki's canonical names.
                            header.append(b"<siteinfo></siteinfo>\n")
                    in_page = True
                    page_start = decompressed - size
                    page_lines = [line]
                    if stripped.endswith(PAGE_END):
                        chunk.append(line)
                        in_page = False
                        pages += 1
                        seen_pages += 1
                elif not seen_pages:
                    header.append(line)
                    if decompressed > MAX_HEADER_BYTES:
                        errors.append(f"{path}: not a MediaWiki XML dump: no <page> element begins a line in "
                                      f"the first {decompressed} bytes of XML.")
                        break
                elif stripped and stripped != FOOTER.strip():
                    # Dropping it would lose pages silently, as with two pages on one line.
                    errors.append(f"{path}: unexpected XML outside a <page> element at decompressed byte "
                                  f"{decompressed - size}, after {seen_pages} complete pages: {stripped[:80]!r}.")
                    break
        except (EOFError, OSError, RuntimeError) as error:
            # indexed_bzip2 reports a truncated or corrupt file as RuntimeError.
            errors.append(f"{path}: failed to decompress after {decompressed} bytes of XML "
                          f"({seen_pages} complete pages): {type(error).__name__}: {error}")
        except _ReadFault as error:
            errors.append(f"{error} ({seen_pages} complete pages before it)")
        if in_page and not errors:
            errors.append(f"{path}: truncated: the XML ends inside the <page> element that starts at "
                          f"decompressed byte {page_start}, after {seen_pages} complete pages.")
        if not seen_pages and not in_page and not errors:
            fault = _header_fault(path, b"".join(header))
            if not decompressed:
                errors.append(f"{path}: empty: the file holds no XML (0 bytes after decompression).")
            elif fault:
                errors.append(fault)
            else:
                log.warning("%s contains no <page> elements", path)
        if chunk:
            yield Job(path=path, header=b"".join(header), xml=b"".join(chunk), compressed_bytes=raw.tell() - consumed)


def _jobs(paths: Sequence[Path], errors: list[str], streams_per_range: Optional[int], pages_per_chunk: int,
          processes: int) -> Iterator[Job]:
    for path in paths:
        if not path.exists():
            raise ExtractionError(f"Dump file not found: {path}")
        if not path.is_file():
            raise ExtractionError(f"Not a file: {path}. Give the dump files themselves, not their folder.")
        index = index_path(path)
        if index is not None:
            log.info("Reading %s in ranges of whole streams (index %s)", path.name, index.name)
            yield from _range_jobs(path, index, streams_per_range, processes, errors)
        else:
            log.info("Reading %s in one pass with %d decompression threads (no multistream index beside it%s)",
                     path.name, processes, f" named {expected_index_name(path.name)}" if expected_index_name(path.name) else "")
            yield from _chunk_jobs(path, pages_per_chunk, errors, threads=processes)
        if errors:
            return


# Running jobs in order, in parallel.


def _ordered_results(jobs: Iterable[Job], processes: int, run: Callable[[Job], JobResult]) -> Iterator[tuple[Job, JobResult]]:
    """Run jobs on `processes` workers and yield the results in job order.

    At most 2 x processes jobs are in flight, so a slow job cannot make
    finished results pile up in memory.
    """
    if processes <= 1:
        for job in jobs:
            yield job, run(job)
        return

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(processes) as pool:
        pending: collections.deque = collections.deque()
        for job in jobs:
            pending.append((job, pool.apply_async(run, (job,))))
            if len(pending) >= 2 * processes:
                finished_job, result = pending.popleft()
                yield finished_job, result.get()
        while pending:
            finished_job, result = pending.popleft()
            yield finished_job, result.get()


class _JobRunner:
    """A picklable callable that runs one job with fixed settings."""

    def __init__(self, default_site_base: str, budget: Budget, converter_factory: ConverterFactory,
                 templates: Optional[DumpTemplates], keep_disambiguation: bool):
        self.default_site_base = default_site_base
        self.budget = budget
        self.converter_factory = converter_factory
        self.templates = templates
        self.keep_disambiguation = keep_disambiguation

    def __call__(self, job: Job) -> JobResult:
        return run_job(job, self.default_site_base, self.budget, self.converter_factory, self.templates,
                       self.keep_disambiguation)


def _template_offsets(path: Path, index: Path) -> set[int]:
    """Return the offsets of the streams that contain Template-namespace pages, from the index titles."""
    offsets = stream_offsets(index)
    header = read_header(path, offsets[0]) if offsets else b""
    match = re.search(rb'<namespace key="10"[^>]*>([^<]+)</namespace>', header)
    prefixes = {"Template:"}
    if match:
        prefixes.add(html.unescape(match.group(1).decode("utf-8")) + ":")
    return {entry.offset for entry in read_index(index) if entry.title.startswith(tuple(prefixes))}


def collect_templates(paths: Sequence[Path], processes: int = 1) -> DumpTemplates:
    """Collect the simple templates and template redirects of dump files.

    With a multistream index, only the streams that hold Template pages are
    read. A file without an index is read in full. A file that cannot be read
    to its end gives the templates before the fault and a warning: the
    extraction pass that follows reports the fault after writing every
    complete page.
    """
    templates = DumpTemplates()
    errors: list[str] = []
    started = time.monotonic()
    for path in (Path(path) for path in paths):
        index = index_path(path)
        jobs: Iterable[Job]
        if index is not None:
            wanted = _template_offsets(path, index)
            jobs = (job for job in _range_jobs(path, index, 1, processes, errors) if job.start in wanted)
        else:
            jobs = _chunk_jobs(path, PAGES_PER_CHUNK, errors)
        try:
            for _, (found, error) in _ordered_results(jobs, processes, collect_job):
                templates.merge(found)
                if error:
                    errors.append(error)
                    break
        except (ExtractionError, StreamError, OSError) as error:
            errors.append(str(error))
        if errors:
            # The extraction pass meets the same fault and reports it after writing the pages before it.
            log.info("Collected templates only up to a fault in %s", path)
            errors.clear()
    log.info("Collected %d template pages: %d simple bodies and %d redirects in %.1f s",
             templates.pages, len(templates.bodies), len(templates.redirects), time.monotonic() - started)
    return templates


class _SeenPageIds:
    """The page ids of the articles yielded so far, one bit each below BITMAP_PAGE_IDS (32 MB at most), in a set above it.

    Dumps list pages by increasing id, so the bitmap grows to the largest id:
    about 10 MB for the English Wikipedia's roughly 80 million ids, where a
    set of its roughly 7 million article ids would take several hundred MB (estimates).
    """

    BITMAP_PAGE_IDS = 1 << 28

    def __init__(self):
        self.bits = bytearray()
        self.large: set[int] = set()

    def add(self, page_id: int) -> bool:
        """Record `page_id`; return False when it was already recorded."""
        if page_id < 0 or page_id >= self.BITMAP_PAGE_IDS:
            if page_id in self.large:
                return False
            self.large.add(page_id)
            return True
        byte, bit = divmod(page_id, 8)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits) // 2)))
        if self.bits[byte] >> bit & 1:
            return False
        self.bits[byte] |= 1 << bit
        return True


def check_disjoint(parts: Sequence[Path]) -> None:
    """Raise ExtractionError when two extracted parts (Parquet files) hold the same page id.

    Each part is extracted on its own, so a page id repeated across parts is
    not caught while extracting. Wikimedia's parts cover disjoint page
    ranges; an overlap means files of different runs were mixed.
    """
    seen = _SeenPageIds()
    for path in parts:
        for batch in pq.ParquetFile(path).iter_batches(columns=["page_id"], batch_size=1 << 16):
            for page_id in batch.column(0).to_pylist():
                if not seen.add(page_id):
                    # Only on failure: find the earlier part that contains the id, to name it.
                    earlier = next((other for other in parts[:parts.index(path)]
                                    if page_id in pq.read_table(other, columns=["page_id"]).column(0).to_pylist()), path)
                    raise ExtractionError(
                        f"Page id {page_id} is in both {earlier.name} and {path.name}: the dump's parts overlap, so "
                        "they come from different runs. Delete the run's dump folder and download it again.")


def iter_articles(
    paths: Sequence[Path],
    stats: ExtractionStats,
    default_site_base: str,
    converter_factory: ConverterFactory = default_converter,
    on_progress: Optional[Progress] = None,
    processes: int = 1,
    budget: Budget = Budget(),
    templates: Optional[DumpTemplates] = None,
    keep_disambiguation: bool = False,
    streams_per_range: Optional[int] = None,
    pages_per_chunk: int = PAGES_PER_CHUNK,
    report_every: float = 10.0,
) -> Iterator[Article]:
    """Yield the articles of bzip2 dump files in dump order, updating `stats`.

    `default_site_base` builds article URLs when a dump's siteinfo has no
    <base>. `converter_factory` receives a dump's namespaces, `templates`
    (from collect_templates, or None) and `keep_disambiguation`, and returns
    the wikitext-to-text function; with several processes it must be
    picklable. Disambiguation pages are skipped and counted unless
    `keep_disambiguation`.
    An article whose page id repeats an earlier article's id (across all
    `paths`) is skipped and counted as "duplicate_page_id": output is keyed
    by page id, and the first copy is kept.
    Raises ExtractionError for a missing, empty, truncated, corrupt or
    non-XML file, one with a document type declaration, or one whose bytes
    are invalid in its encoding, after yielding every complete article
    before the fault. XML in UTF-16 or in an encoding its declaration names
    is transcoded to UTF-8 when the file has no multistream index.
    """
    paths = [Path(path) for path in paths]
    total_bytes = sum(path.stat().st_size for path in paths if path.exists()) or 1
    done_bytes = 0
    started = last_report = time.monotonic()
    errors: list[str] = []
    runner = _JobRunner(default_site_base, budget, converter_factory, templates, keep_disambiguation)
    # Load the namespace table before the workers fork, so that they share it instead of each reading it.
    interlanguage_prefixes()

    jobs = _jobs(paths, errors, streams_per_range, pages_per_chunk, processes)
    seen = _SeenPageIds()
    for job, result in _ordered_results(jobs, processes, runner):
        stats.merge(result.stats)
        for article in result.articles:
            # Checked here, where results arrive in dump order, because each worker reads only its own job.
            if not seen.add(article.page_id):
                stats.articles -= 1
                stats.characters -= len(article.text)
                stats.skip("duplicate_page_id")
                if stats.skipped["duplicate_page_id"] == 1:
                    log.warning("%s: page id %d (%r) repeats an earlier article's id; keeping the first, counting the rest",
                                job.path, article.page_id, article.title)
                continue
            stats.count_residues(article.text)
            yield article
        if result.error:
            raise ExtractionError(result.error)

        done_bytes += job.compressed_bytes
        now = time.monotonic()
        if now - last_report >= report_every:
            last_report = now
            _report(stats, done_bytes, total_bytes, now - started, on_progress)

    if errors:
        raise ExtractionError(errors[0])
    _report(stats, total_bytes, total_bytes, time.monotonic() - started, on_progress)


def _report(stats: ExtractionStats, done: int, total: int, elapsed: float, on_progress: Optional[Progress]) -> None:
    elapsed = max(elapsed, 1e-9)
    message = (
        f"{stats.pages} pages, {stats.articles} articles, {done / 1e6:.1f}/{total / 1e6:.1f} MB read, "
        f"{stats.pages / elapsed:.0f} pages/s, {done / 1e6 / elapsed:.2f} MB/s"
    )
    log.info("Extracting: %s", message)
    if on_progress:
        on_progress(message, min(done / total, 1.0))


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    from pipeline.extract_cli import main

    raise SystemExit(main())
