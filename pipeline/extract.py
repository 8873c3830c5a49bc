"""Stream the pages of dump files and turn articles into plain text.

An article is a page in namespace 0 that is not a redirect and whose latest
revision is wikitext with text. Every other page is skipped and counted by
reason. A page whose conversion raises is skipped and counted by the
exception's type, with a few page ids kept as examples. Such a page never
stops the run. A file that is not readable dump XML stops the run with an error that
names the file.
"""

from __future__ import annotations

import bz2
import datetime as dt
import logging
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import mwxml

from pipeline.articles import Article
from pipeline.wikitext import Namespaces, WikitextConverter

log = logging.getLogger(__name__)

ARTICLE_NAMESPACE = 0
EXAMPLES_PER_REASON = 10

Progress = Callable[[str, Optional[float]], None]
ConverterFactory = Callable[[Namespaces], Callable[[str], str]]


class ExtractionError(RuntimeError):
    """A dump file cannot be read as MediaWiki XML."""


@dataclass
class ExtractionStats:
    """Counts of what happened to every page read."""

    pages: int = 0
    articles: int = 0
    characters: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    failed_examples: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def fail(self, reason: str, page_id: int) -> None:
        if not self.failed[reason]:
            log.warning("Skipping pages that raise %s (first: page %d); counting the rest", reason, page_id)
        self.failed[reason] += 1
        examples = self.failed_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(page_id)

    def to_dict(self) -> dict:
        return {
            "pages": self.pages,
            "articles": self.articles,
            "characters": self.characters,
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "failed_examples": self.failed_examples,
        }


def article_url(site_base: str, title: str) -> str:
    """Return the URL of `title` on the wiki whose main page URL is `site_base`.

    The siteinfo <base> element is the main page's URL, such as
    https://en.wikipedia.org/wiki/Main_Page; articles live beside it.
    """
    prefix = site_base.rsplit("/", 1)[0] + "/"
    return prefix + urllib.parse.quote(title.replace(" ", "_"), safe=";:@$!*(),/~'")


def _default_converter(namespaces: Namespaces) -> Callable[[str], str]:
    return WikitextConverter(namespaces).to_text


def iter_articles(
    paths: Sequence[Path],
    stats: ExtractionStats,
    default_site_base: str,
    converter_factory: ConverterFactory = _default_converter,
    on_progress: Optional[Progress] = None,
    report_every: float = 10.0,
) -> Iterator[Article]:
    """Yield the articles of bzip2 dump files in file order, updating `stats`.

    `default_site_base` builds article URLs when a dump's siteinfo has no
    <base>. `converter_factory` receives the dump's namespaces and returns
    the wikitext-to-text function (tests pass their own).
    """
    total_bytes = sum(path.stat().st_size for path in paths) or 1
    done_bytes = 0
    started = last_report = time.monotonic()

    for path in paths:
        with open(path, "rb") as raw, bz2.open(raw, "rb") as xml:
            try:
                dump = mwxml.Dump.from_file(xml)
            except Exception as error:  # mwxml raises bare exceptions for malformed headers
                raise ExtractionError(f"{path}: not a readable MediaWiki XML dump: {error}") from error

            names = {namespace.id: namespace.name for namespace in (dump.site_info.namespaces or [])}
            convert = converter_factory(Namespaces.from_site_info(names))
            site_base = dump.site_info.base or default_site_base

            last_page_id = None
            try:
                for page in dump:
                    last_page_id = page.id
                    article = _page_article(page, convert, site_base, stats)
                    if article is not None:
                        yield article

                    now = time.monotonic()
                    if now - last_report >= report_every:
                        last_report = now
                        _report(stats, done_bytes + raw.tell(), total_bytes, now - started, on_progress)
            except (ExtractionError, GeneratorExit):
                raise
            except Exception as error:  # XML and decompression errors surface as many types
                where = f"after page {last_page_id}" if last_page_id is not None else "before the first page"
                raise ExtractionError(f"{path}: failed to read the dump {where}: {type(error).__name__}: {error}") from error
        done_bytes += path.stat().st_size

    _report(stats, total_bytes, total_bytes, time.monotonic() - started, on_progress)


def _page_article(page, convert: Callable[[str], str], site_base: str, stats: ExtractionStats) -> Optional[Article]:
    """Return the article of one page, or None after counting why it was skipped."""
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

    try:
        text = convert(revision.text)
    except Exception as error:  # one bad page must never stop a run over millions; it is counted by type
        stats.fail(type(error).__name__, page.id)
        return None
    if not text:
        stats.skip("empty_text")
        return None

    stats.articles += 1
    stats.characters += len(text)
    timestamp = dt.datetime.fromtimestamp(revision.timestamp.unix(), tz=dt.timezone.utc) if revision.timestamp else dt.datetime.fromtimestamp(0, tz=dt.timezone.utc)
    return Article(
        page_id=page.id,
        revision_id=revision.id,
        timestamp=timestamp,
        title=page.title,
        url=article_url(site_base, page.title),
        text=text,
    )


def _report(stats: ExtractionStats, done: int, total: int, elapsed: float, on_progress: Optional[Progress]) -> None:
    elapsed = max(elapsed, 1e-9)
    message = (
        f"{stats.pages} pages, {stats.articles} articles, {done / 1e6:.1f}/{total / 1e6:.1f} MB read, "
        f"{stats.pages / elapsed:.0f} pages/s, {done / 1e6 / elapsed:.2f} MB/s"
    )
    log.info("Extracting: %s", message)
    if on_progress:
        on_progress(message, done / total)
