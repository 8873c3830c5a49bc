"""Stream the pages of dump files and turn articles into plain text, in parallel.

An article is a page in namespace 0 that is not a redirect and whose latest
revision is wikitext with text. Every other page is skipped and counted by
reason. A page whose conversion raises, or that passes the size or time
budget, is skipped and counted by reason with its page id; it never stops
the run.

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

from pipeline.articles import Article
from pipeline.dump_templates import TEMPLATE_NAMESPACE, DumpTemplates
from pipeline.multistream import StreamError, decompress_range, page_ranges, read_header, read_index, stream_offsets
from pipeline.wikitext import Namespaces, WikitextConverter, interlanguage_prefixes, is_disambiguation, redirect_target

log = logging.getLogger(__name__)

ARTICLE_NAMESPACE = 0
# Page ids are kept for every failed or over-budget page, up to this many per reason.
PAGE_IDS_PER_REASON = 1000
# Maximum streams per job: 10 streams of 100 pages keep a job's memory to a few tens of MB.
STREAMS_PER_RANGE = 10
PAGES_PER_CHUNK = 1000
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


@dataclass
class ExtractionStats:
    """Counts of what happened to every page read."""

    pages: int = 0
    articles: int = 0
    characters: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    failed_pages: dict[str, list[int]] = field(default_factory=dict)

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

    def to_dict(self) -> dict:
        return {
            "pages": self.pages,
            "articles": self.articles,
            "characters": self.characters,
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "failed_pages": self.failed_pages,
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


def _job_location(job: Job, last_page_id: Optional[int]) -> str:
    where = f"after page {last_page_id}" if last_page_id is not None else "before its first page"
    return f"bytes {job.start}-{job.end} {where}" if job.start is not None else f"a chunk of pages, {where}"


def run_job(job: Job, default_site_base: str, budget: Budget,
            converter_factory: ConverterFactory = default_converter,
            templates: Optional[DumpTemplates] = None, keep_disambiguation: bool = False) -> JobResult:
    """Extract the articles of one job. A truncated, corrupt or invalid range comes back in `error`, not raised."""
    stats = ExtractionStats()
    articles: list[Article] = []
    pages, error = _job_pages(job)
    if not pages.strip():
        return JobResult(articles, stats, error)

    last_page_id = None
    try:
        dump = mwxml.Dump.from_file(io.BytesIO(job.header + pages + FOOTER))
        names = {namespace.id: namespace.name for namespace in (dump.site_info.namespaces or [])}
        namespaces = Namespaces.for_wiki(dump.site_info.dbname or "", names)
        convert = converter_factory(namespaces, templates, keep_disambiguation)
        # With one known language only its keywords count; otherwise every language's do.
        language = next(iter(namespaces.languages)) if len(namespaces.languages) == 1 else None
        site_base = dump.site_info.base or default_site_base
        for page in dump:
            last_page_id = page.id
            article = _page_article(page, convert, site_base, stats, budget, language, keep_disambiguation)
            if article is not None:
                articles.append(article)
    except Exception as parse_error:  # mwxml and expat raise many types for malformed XML
        error = error or f"{job.path}: invalid XML in {_job_location(job, last_page_id)}: {type(parse_error).__name__}: {parse_error}"
    return JobResult(articles, stats, error)


def collect_job(job: Job) -> tuple[DumpTemplates, Optional[str]]:
    """Collect the Template-namespace pages of one job; a fault comes back as a message."""
    templates = DumpTemplates()
    pages, error = _job_pages(job)
    if not pages.strip():
        return templates, error
    last_page_id = None
    try:
        for page in mwxml.Dump.from_file(io.BytesIO(job.header + pages + FOOTER)):
            last_page_id = page.id
            revision = None
            for revision in page:
                pass
            if page.namespace == TEMPLATE_NAMESPACE and revision is not None:
                templates.add_page(page.title, revision.text, page.redirect)
    except Exception as parse_error:  # mwxml and expat raise many types for malformed XML
        error = error or f"{job.path}: invalid XML in {_job_location(job, last_page_id)}: {type(parse_error).__name__}: {parse_error}"
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
    """Return the multistream index beside `dump`, or None when there is none.

    Wikimedia names it like the dump with "-index" before the file type:
    x-multistream.xml.bz2 -> x-multistream-index.txt.bz2, and
    x-multistream3.xml-p1p41242.bz2 -> x-multistream-index3.txt-p1p41242.bz2.
    """
    name = dump.name
    if "-multistream" not in name or ".xml" not in name:
        return None
    stem, _, rest = name.partition(".xml")
    base, _, part = stem.partition("-multistream")
    candidate = dump.with_name(f"{base}-multistream-index{part}.txt{rest}")
    return candidate if candidate.exists() else None


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
        # is a small share of the run; big files get ranges of about 1000 pages.
        streams_per_range = max(1, min(STREAMS_PER_RANGE, len(offsets) // (8 * processes)))
    size = path.stat().st_size
    try:
        header = read_header(path, min(offsets[0], size))
    except StreamError as error:
        errors.append(str(error))
        return
    if b"<mediawiki" not in header or b"<siteinfo" not in header:
        errors.append(f"{path}: the first bzip2 stream is not a MediaWiki <siteinfo> header; is this a multistream dump?")
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

    A fault while reading (a truncated or corrupt file) is appended to `errors`
    after the complete pages before it have been yielded as a last chunk.
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
    with open(path, "rb") as raw, _decompressed(raw, threads) as lines:
        try:
            for line in lines:
                decompressed += len(line)
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
                    in_page = True
                    page_start = decompressed - len(line)
                    page_lines = [line]
                    if stripped.endswith(PAGE_END):
                        chunk.append(line)
                        in_page = False
                        pages += 1
                        seen_pages += 1
                elif not pages and not chunk and not consumed:
                    header.append(line)
        except (EOFError, OSError, RuntimeError) as error:
            # indexed_bzip2 reports a truncated or corrupt file as RuntimeError.
            errors.append(f"{path}: failed to decompress after {decompressed} bytes of XML "
                          f"({seen_pages} complete pages): {type(error).__name__}: {error}")
        if in_page and not errors:
            errors.append(f"{path}: truncated: the XML ends inside the <page> element that starts at "
                          f"decompressed byte {page_start}, after {seen_pages} complete pages.")
        if not seen_pages and not in_page and not errors:
            if b"<mediawiki" not in b"".join(header):
                errors.append(f"{path}: not a MediaWiki XML dump: no <mediawiki> element in the first {decompressed} bytes.")
            else:
                log.warning("%s contains no <page> elements", path)
        if chunk:
            yield Job(path=path, header=b"".join(header), xml=b"".join(chunk), compressed_bytes=raw.tell() - consumed)


def _jobs(paths: Sequence[Path], errors: list[str], streams_per_range: Optional[int], pages_per_chunk: int,
          processes: int) -> Iterator[Job]:
    for path in paths:
        if not path.exists():
            raise ExtractionError(f"Dump file not found: {path}")
        index = index_path(path)
        if index is not None:
            log.info("Reading %s in ranges of whole streams (index %s)", path.name, index.name)
            yield from _range_jobs(path, index, streams_per_range, processes, errors)
        else:
            log.info("Reading %s sequentially (no multistream index beside it)", path.name)
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
            log.warning("Collected templates only up to a fault: %s", errors[0])
            errors.clear()
    log.info("Collected %d template pages: %d simple bodies and %d redirects in %.1f s",
             templates.pages, len(templates.bodies), len(templates.redirects), time.monotonic() - started)
    return templates


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
    Raises ExtractionError for a missing, truncated, corrupt or non-XML file,
    after yielding every complete article before the fault.
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
    for job, result in _ordered_results(jobs, processes, runner):
        stats.merge(result.stats)
        yield from result.articles
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
