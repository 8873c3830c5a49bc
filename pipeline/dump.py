"""Find a complete Wikipedia dump on a mirror and copy it, verified, into the data root.

A mirror is any base location laid out like https://dumps.wikimedia.org:

    {base}/{wiki}/                          one folder per dump date (YYYYMMDD)
    {base}/{wiki}/{date}/dumpstatus.json    the state of every job of that run
    {base}/{wiki}/{date}/{file}             the files that the jobs published

The base may be an http(s) URL, a file:// URL or a plain local folder; all
reads go through smart_open. The pipeline reads the `articlesmultistreamdump`
job: the latest revision of every page in bzip2 streams of 100 pages, with an
index. A split wiki (English has 27 parts) lists several file pairs there;
every one of them is taken from the file list, never from a fixed table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Optional

import requests
import smart_open

from pipeline import __version__
from pipeline.storage import atomic_path, file_digest

log = logging.getLogger(__name__)

MULTISTREAM_JOB = "articlesmultistreamdump"
WIKIMEDIA_HOSTS = frozenset({"dumps.wikimedia.org", "download.wikimedia.org"})
PROJECT_URL = "https://github.com/wikichar/wikichar"
DATE_PATTERN = re.compile(r"^\d{8}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CHUNK_SIZE = 1 << 20
# Bytes read from a response per write: a connection lost mid-read loses at most this much.
HTTP_CHUNK_SIZE = 64 << 10

Progress = Callable[[str, Optional[float]], None]


class DumpError(RuntimeError):
    """A dump cannot be found, read or verified."""


class DumpNotReady(DumpError):
    """A dump run exists but its multistream job is not complete."""


def wiki_name(language: str) -> str:
    """Return the database name of a Wikipedia language edition: "en" -> "enwiki".

    Wikimedia writes a hyphen in a language code as an underscore, so
    "zh-yue" becomes "zh_yuewiki".
    """
    if not LANGUAGE_PATTERN.match(language):
        raise ValueError(
            f"Invalid language code {language!r}: expected a Wikipedia language code "
            "such as 'en', 'de' or 'zh-yue'."
        )
    return language.replace("-", "_") + "wiki"


def check_date(date: str) -> str:
    """Return `date` if it is a dump date in the YYYYMMDD form, else raise ValueError."""
    if not DATE_PATTERN.match(date):
        raise ValueError(f"Invalid dump date {date!r}: expected YYYYMMDD (for example 20160501) or 'latest'.")
    return date


def user_agent(contact: str = "") -> str:
    """Return the User-Agent header sent to mirrors.

    Wikimedia blocks generic User-Agents on its dump server, and its policy requires
    a client name, a version and a way to reach the operator.
    """
    contact_part = f"; {contact}" if contact else ""
    return f"wikichar/{__version__} ({PROJECT_URL}{contact_part}) python-requests/{requests.__version__}"


@dataclass(frozen=True)
class DumpFile:
    """One published file of a dump job, as listed in dumpstatus.json, with at least one checksum."""

    name: str
    size: int
    sha1: str = ""
    md5: str = ""

    @property
    def is_index(self) -> bool:
        return "-index" in self.name

    @property
    def checksum(self) -> tuple[str, str]:
        """Return (algorithm, expected hex digest): sha1 when published, else md5."""
        return ("sha1", self.sha1) if self.sha1 else ("md5", self.md5)


class Mirror:
    """Read access to a mirror of Wikimedia's dump tree.

    `base` is an http(s) or file:// URL, or a local folder path. `contact`
    (an e-mail or URL) goes into the User-Agent; it is required for
    Wikimedia's own dump server, and DumpError is raised without it.
    """

    def __init__(self, base: str, contact: str = "", timeout: float = 60.0):
        if not base:
            raise ValueError("The mirror is empty: set it to a URL such as https://dumps.wikimedia.org or a local folder.")
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.headers = {"User-Agent": user_agent(contact), "Accept-Encoding": "identity"}
        parsed = urllib.parse.urlparse(self.base)
        self.is_http = parsed.scheme in ("http", "https")
        if self.is_http and (parsed.hostname or "").lower() in WIKIMEDIA_HOSTS and not contact.strip():
            raise DumpError(
                f"Set a contact before downloading from {parsed.hostname}: Wikimedia blocks clients whose "
                "User-Agent gives no way to reach their operator. Pass --contact you@example.org "
                "(or set contact under [TrainWikiModel] in luigi.cfg), or use a mirror."
            )
        if parsed.scheme == "file":
            self.local_root: Optional[Path] = Path(urllib.parse.unquote(parsed.path))
        elif parsed.scheme == "":
            self.local_root = Path(self.base).expanduser()
        else:
            self.local_root = None

    def __repr__(self) -> str:
        return f"Mirror({self.base!r})"

    def location(self, *parts: str) -> str:
        """Return the URL or path of `parts` below the mirror's base."""
        if self.local_root is not None:
            return str(self.local_root.joinpath(*parts))
        return "/".join([self.base, *(urllib.parse.quote(part) for part in parts)])

    def open(self, *parts: str) -> IO[bytes]:
        """Open a file of the mirror for binary reading."""
        location = self.location(*parts)
        transport_params = {"headers": self.headers, "timeout": self.timeout} if self.is_http else None
        return smart_open.open(location, "rb", compression="disable", transport_params=transport_params)

    def list_dates(self, wiki: str) -> list[str]:
        """Return the dump dates that the mirror lists for `wiki`, newest first."""
        if self.local_root is not None:
            folder = self.local_root / wiki
            if not folder.is_dir():
                raise DumpError(f"Wiki folder not found on the mirror: {folder}. Check the mirror and the language.")
            names = [entry.name for entry in folder.iterdir() if entry.is_dir()]
        elif self.is_http:
            url = self.location(wiki) + "/"
            try:
                response = requests.get(url, headers=self.headers, timeout=self.timeout)
                response.raise_for_status()
            except requests.RequestException as error:
                raise DumpError(f"Failed to list dump dates at {url}: {error}") from error
            # Both nginx's autoindex and Python's http.server list folders as <a href="20160501/">.
            names = re.findall(r'href="(\d{8})/?"', response.text)
        else:
            raise DumpError(
                f"Cannot list dump dates on {self.base}: listing works for http(s) URLs and local folders. "
                "Pass a concrete --date instead of 'latest'."
            )
        return sorted({name for name in names if DATE_PATTERN.match(name)}, reverse=True)

    def read_status(self, wiki: str, date: str) -> dict:
        """Return the parsed dumpstatus.json of one dump run."""
        location = self.location(wiki, date, "dumpstatus.json")
        try:
            with self.open(wiki, date, "dumpstatus.json") as stream:
                return json.load(stream)
        except (OSError, requests.RequestException) as error:
            raise DumpError(
                f"Failed to read {location}: {error}. Check that the mirror has a {wiki} dump dated {date}, "
                "or use --date latest for the newest complete one."
            ) from error
        except ValueError as error:
            raise DumpError(f"Invalid JSON in {location}: {error}") from error


def multistream_files(status: dict, wiki: str, date: str) -> list[DumpFile]:
    """Return the files of the multistream job of a run, or raise DumpNotReady.

    The job must be `done` and every file must be published with its url,
    size and a checksum (sha1, or md5 where that is all there is). File names must belong to this wiki and date and may not
    contain path separators, so a tampered status file cannot write outside
    the data root.
    """
    job = status.get("jobs", {}).get(MULTISTREAM_JOB)
    if not isinstance(job, dict):
        raise DumpNotReady(f"{wiki} {date}: dumpstatus.json has no {MULTISTREAM_JOB} job")
    if job.get("status") != "done":
        raise DumpNotReady(f"{wiki} {date}: job {MULTISTREAM_JOB} is {job.get('status')!r}, not 'done'")
    files = job.get("files")
    if not isinstance(files, dict) or not files:
        raise DumpNotReady(f"{wiki} {date}: job {MULTISTREAM_JOB} lists no files")

    name_pattern = re.compile(rf"^{re.escape(wiki)}-{date}-pages-articles-multistream[A-Za-z0-9.\-]*\.bz2$")
    result = []
    for name, entry in sorted(files.items()):
        if not name_pattern.match(name) or ".." in name:
            raise DumpError(f"{wiki} {date}: unexpected file name {name!r} in dumpstatus.json; refusing to download it")
        missing = [key for key in ("url", "size") if not entry.get(key)]
        if not entry.get("sha1") and not entry.get("md5"):
            missing.append("sha1 or md5")
        if missing:
            raise DumpNotReady(f"{wiki} {date}: file {name} is not published yet (missing {', '.join(missing)})")
        expected_url = f"/{wiki}/{date}/{name}"
        if entry["url"] != expected_url:
            raise DumpError(f"{wiki} {date}: file {name} has url {entry['url']!r}, expected {expected_url!r}")
        result.append(DumpFile(name=name, size=int(entry["size"]), sha1=entry.get("sha1", "").lower(),
                               md5=entry.get("md5", "").lower()))

    if not any(file.is_index for file in result) or all(file.is_index for file in result):
        raise DumpNotReady(f"{wiki} {date}: job {MULTISTREAM_JOB} must list both dump files and index files")
    return result


def resolve_latest_date(mirror: Mirror, wiki: str) -> str:
    """Return the newest date whose multistream job is done with every file published.

    Runs that are in progress, failed or unreadable are skipped with a log
    line saying why. Wikimedia's `latest/` folder is never used, because its
    links can point at files of different runs.
    """
    dates = mirror.list_dates(wiki)
    for date in dates:
        try:
            multistream_files(mirror.read_status(wiki, date), wiki, date)
        except DumpError as error:
            log.info("Skipping dump %s %s: %s", wiki, date, error)
            continue
        log.info("Newest complete dump of %s on %s: %s", wiki, mirror.base, date)
        return date
    raise DumpError(
        f"No complete dump of {wiki} on {mirror.base} (looked at {len(dates)} dates). "
        "Check the language and the mirror, or pass --date for a known run."
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a download after a transient failure.

    The wait before retry n (1-based) is backoff_seconds * 2**(n-1), at most max_backoff_seconds.
    """

    attempts: int = 6
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 120.0

    def wait(self, retry: int) -> float:
        return min(self.backoff_seconds * 2 ** (retry - 1), self.max_backoff_seconds)


class _Retryable(Exception):
    """A transient failure: a timeout, a reset connection, or HTTP 408, 429 or 5xx."""


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def download_file(
    mirror: Mirror,
    wiki: str,
    date: str,
    dump_file: DumpFile,
    destination: Path,
    on_progress: Optional[Progress] = None,
    report_every: float = 5.0,
    retry: RetryPolicy = RetryPolicy(),
) -> Path:
    """Copy one dump file to `destination`, verified against its size and checksum (sha1, else md5).

    The file appears at `destination` only when both match; on a mismatch the
    partial copy is deleted and DumpError names the file and both values.
    Over http(s), the bytes received so far stay in `{destination}.part`
    between attempts and runs, and the next attempt requests only the rest.
    """
    source = mirror.location(wiki, date, dump_file.name)
    log.info("Downloading %s (%.1f MB) from %s", dump_file.name, dump_file.size / 1e6, source)
    started = time.monotonic()
    if mirror.is_http:
        _download_http(mirror, source, dump_file, destination, on_progress, report_every, retry)
    else:
        _copy_stream(mirror, wiki, date, source, dump_file, destination, on_progress, report_every)
    elapsed = max(time.monotonic() - started, 1e-9)
    log.info("Downloaded %s: %.1f MB in %.1f s (%.1f MB/s), %s verified",
             dump_file.name, dump_file.size / 1e6, elapsed, dump_file.size / 1e6 / elapsed, dump_file.checksum[0])
    return destination


def _copy_stream(mirror: Mirror, wiki: str, date: str, source: str, dump_file: DumpFile, destination: Path,
                 on_progress: Optional[Progress], report_every: float) -> None:
    """Copy a file from a local, file:// or object-store mirror in one pass."""
    digest = hashlib.new(dump_file.checksum[0])
    copied = 0
    started = last_report = time.monotonic()
    try:
        with mirror.open(wiki, date, dump_file.name) as remote, atomic_path(destination) as temporary:
            with open(temporary, "wb") as local:
                while chunk := remote.read(CHUNK_SIZE):
                    local.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                    now = time.monotonic()
                    if now - last_report >= report_every:
                        last_report = now
                        _report_download(dump_file, copied, now - started, on_progress)
            _verify(dump_file, source, copied, digest.hexdigest())
    except (OSError, requests.RequestException) as error:
        raise DumpError(f"Failed to download {source}: {error}") from error


def _download_http(mirror: Mirror, url: str, dump_file: DumpFile, destination: Path, on_progress: Optional[Progress],
                   report_every: float, retry: RetryPolicy) -> None:
    """Download over http(s) with resume, retries and verification.

    The partial file `{destination}.part` grows across attempts. A resumed
    request sends `Range: bytes=N-` with `If-Range` set to the validator
    (ETag or Last-Modified) of the response that started the file, so a
    server whose file changed sends the whole new file instead of a mismatched
    tail. A server that responds 200 to a range request is sending the whole
    file, and the partial file starts over.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    validator_path = destination.with_name(destination.name + ".part.validator")
    last_error = "no attempt made"

    with requests.Session() as session:
        for attempt in range(1, retry.attempts + 1):
            if attempt > 1:
                wait = retry.wait(attempt - 1)
                log.warning("Retrying %s in %.0f s (attempt %d of %d) after: %s", url, wait, attempt, retry.attempts, last_error)
                time.sleep(wait)
            try:
                _fetch_rest(session, mirror, url, dump_file, partial, validator_path, on_progress, report_every)
                break
            except _Retryable as error:
                last_error = str(error)
        else:
            raise DumpError(f"Failed to download {url} after {retry.attempts} attempts; last error: {last_error}. "
                            "The bytes received so far are kept; run again to resume.")

    size = partial.stat().st_size
    try:
        _verify(dump_file, url, size, file_digest(partial, dump_file.checksum[0]))
    except DumpError:
        partial.unlink(missing_ok=True)
        validator_path.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    validator_path.unlink(missing_ok=True)


def _fetch_rest(session: requests.Session, mirror: Mirror, url: str, dump_file: DumpFile, partial: Path,
                validator_path: Path, on_progress: Optional[Progress], report_every: float) -> None:
    """Make one request for the bytes missing from `partial` and append them. Raises _Retryable or DumpError."""
    offset = partial.stat().st_size if partial.exists() else 0
    if offset >= dump_file.size:
        return
    headers = dict(mirror.headers)
    validator = validator_path.read_text(encoding="utf-8") if offset and validator_path.exists() else ""
    if offset and validator:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    elif offset:
        # Without a validator a resumed tail could come from a changed file, so start over.
        offset = 0

    try:
        response = session.get(url, headers=headers, stream=True, timeout=mirror.timeout)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise _Retryable(f"{type(error).__name__}: {error}") from error
    with response:
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code} for {url}")
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise DumpError(f"{url}: asked for bytes from {offset}, got Content-Range {content_range!r}")
            mode = "ab"
        elif response.status_code == 200:
            if offset:
                log.info("%s: the server sent the whole file instead of bytes %d-; starting over", url, offset)
            offset = 0
            mode = "wb"
            validator_path.write_text(response.headers.get("ETag") or response.headers.get("Last-Modified") or "",
                                      encoding="utf-8")
        else:
            raise DumpError(f"Failed to download {url}: HTTP {response.status_code} {response.reason}")

        copied = offset
        started = last_report = time.monotonic()
        try:
            with open(partial, mode) as local:
                for chunk in response.iter_content(HTTP_CHUNK_SIZE):
                    local.write(chunk)
                    copied += len(chunk)
                    now = time.monotonic()
                    if now - last_report >= report_every:
                        last_report = now
                        _report_download(dump_file, copied, now - started, on_progress, copied - offset)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise _Retryable(f"connection lost at byte {copied}: {error}") from error
    if copied < dump_file.size:
        raise _Retryable(f"the response ended at byte {copied} of {dump_file.size}")


def _verify(dump_file: DumpFile, source: str, size: int, digest: str) -> None:
    if size != dump_file.size:
        raise DumpError(
            f"Size mismatch for {source}: expected {dump_file.size} bytes (dumpstatus.json), downloaded {size}. "
            "The partial file was deleted; run again to retry."
        )
    algorithm, expected = dump_file.checksum
    if digest != expected:
        raise DumpError(
            f"{algorithm} mismatch for {source}: expected {expected} (dumpstatus.json), downloaded file has {digest}. "
            "The file was deleted; if this repeats, the mirror holds a corrupt copy: try another mirror."
        )


def _report_download(dump_file: DumpFile, copied: int, elapsed: float, on_progress: Optional[Progress],
                     fetched: Optional[int] = None) -> None:
    """Log and report progress; the rate counts only the `fetched` bytes of this request (default: all)."""
    rate = (copied if fetched is None else fetched) / max(elapsed, 1e-9)
    remaining = (dump_file.size - copied) / rate if rate else float("inf")
    message = f"{dump_file.name}: {copied / 1e6:.1f}/{dump_file.size / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s, ETA {remaining:.0f} s"
    log.info("Downloading %s", message)
    if on_progress:
        on_progress(message, copied / dump_file.size if dump_file.size else None)
