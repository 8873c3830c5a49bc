"""Find a complete Wikipedia dump on a mirror and copy it, verified, into the data root.

A mirror is any base location laid out like https://dumps.wikimedia.org:

    {base}/{wiki}/                          one folder per dump date (YYYYMMDD)
    {base}/{wiki}/{date}/dumpstatus.json    the state of every job of that run
    {base}/{wiki}/{date}/{file}             the files that the jobs published

The base may be an http(s) URL, an s3:// URL, a file:// URL or a plain
local folder; all reads go through smart_open. Two sources are read:

- "multistream" (the default): the `articlesmultistreamdump` job, the latest
  revision of every page in bzip2 streams of 100 pages, with an index. A
  split wiki (English has 27 parts) lists several file pairs there; every one
  of them is taken from the file list, never from a fixed table.
- "content-export": Wikimedia's MediaWiki Content File Exports, in
  `{base}/other/mediawiki_content_current/{wiki}/{YYYY-MM-DD}/xml/bzip2/`:
  one bzip2 stream per page-range file, no index, and a SHA256SUMS manifest
  and a _SUCCESS marker instead of dumpstatus.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Optional

import requests
import smart_open

from pipeline import __version__
from pipeline.multistream import expected_index_name
from pipeline.storage import atomic_path, file_digest

log = logging.getLogger(__name__)

MULTISTREAM_JOB = "articlesmultistreamdump"
MULTISTREAM = "multistream"
CONTENT_EXPORT = "content-export"
SOURCES = (MULTISTREAM, CONTENT_EXPORT)
CONTENT_EXPORT_ROOT = ("other", "mediawiki_content_current")
WIKIMEDIA_HOSTS = frozenset({"dumps.wikimedia.org", "download.wikimedia.org"})
# URL schemes of mirrors; "" is a local folder. smart_open reads all of them (s3 and gs with their extras).
MIRROR_SCHEMES = frozenset({"", "file", "http", "https", "s3", "gs"})
PROJECT_URL = "https://github.com/wikichar/wikichar"
DATE_PATTERN = re.compile(r"^\d{8}$")
ISO_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CHUNK_SIZE = 1 << 20
# Bytes read from a response per write: a connection lost mid-read loses at most this much.
HTTP_CHUNK_SIZE = 64 << 10

Progress = Callable[[str, Optional[float]], None]

try:
    from botocore.exceptions import BotoCoreError, ClientError

    # Failures of reads and listings on s3:// mirrors, where boto3 is installed.
    READ_ERRORS: tuple[type[BaseException], ...] = (OSError, requests.RequestException, BotoCoreError, ClientError)
except ImportError:
    READ_ERRORS = (OSError, requests.RequestException)


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


def check_source(source: str) -> str:
    """Return `source` if it is one of SOURCES, else raise ValueError."""
    if source not in SOURCES:
        raise ValueError(f"Invalid dump source {source!r}: expected one of {', '.join(SOURCES)}.")
    return source


def iso_date(date: str) -> str:
    """Return a YYYYMMDD dump date as YYYY-MM-DD, the form content exports use in their paths."""
    check_date(date)
    return f"{date[:4]}-{date[4:6]}-{date[6:]}"


def wiki_folder(wiki: str, source: str = MULTISTREAM) -> tuple[str, ...]:
    """Return the path parts, below a mirror's base, of the folder that lists a wiki's dated runs."""
    return (wiki,) if check_source(source) == MULTISTREAM else (*CONTENT_EXPORT_ROOT, wiki)


def run_folder(wiki: str, date: str, source: str = MULTISTREAM) -> tuple[str, ...]:
    """Return the path parts, below a mirror's base, of the folder that contains one run's files."""
    if check_source(source) == MULTISTREAM:
        return (*wiki_folder(wiki, source), check_date(date))
    return (*wiki_folder(wiki, source), iso_date(date), "xml", "bzip2")


def user_agent(contact: str = "") -> str:
    """Return the User-Agent header sent to mirrors.

    Wikimedia blocks generic User-Agents on its dump server, and its policy requires
    a client name, a version and a way to reach the operator.
    """
    contact_part = f"; {contact}" if contact else ""
    return f"wikichar/{__version__} ({PROJECT_URL}{contact_part}) python-requests/{requests.__version__}"


@dataclass(frozen=True)
class DumpFile:
    """One published file of a dump run, with at least one checksum.

    `size` is None where the source publishes no size (content exports):
    the download then learns it from the server and relies on the checksum.
    `folder` is the path parts of the file's folder below the mirror's base.
    """

    name: str
    size: Optional[int]
    sha1: str = ""
    md5: str = ""
    sha256: str = ""
    folder: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return "-index" in self.name

    @classmethod
    def from_listing(cls, entry: dict) -> "DumpFile":
        """Return the file that an entry of a downloaded run's files.json describes."""
        return cls(name=entry["name"], size=entry["size"], sha1=entry.get("sha1", ""), md5=entry.get("md5", ""),
                   sha256=entry.get("sha256", ""))

    @property
    def checksum(self) -> tuple[str, str]:
        """Return (algorithm, expected hex digest): the strongest one published, sha256, then sha1, then md5."""
        if self.sha256:
            return ("sha256", self.sha256)
        return ("sha1", self.sha1) if self.sha1 else ("md5", self.md5)


class Mirror:
    """Read access to a mirror of Wikimedia's dump tree.

    `base` is an http(s), s3:// or file:// URL, or a local folder path. `contact`
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
        if parsed.scheme not in MIRROR_SCHEMES:
            raise ValueError(f"Invalid mirror {base!r}: the scheme {parsed.scheme!r} is not supported. Use an http(s), "
                             "s3, gs or file URL, or a local folder.")
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

    def read_bytes(self, *parts: str) -> bytes:
        """Return the bytes of a small file of the mirror; DumpError names the location and the failure."""
        location = self.location(*parts)
        try:
            with self.open(*parts) as stream:
                return stream.read()
        except READ_ERRORS as error:
            raise DumpError(f"Failed to read {location}: {error}") from error

    def list_dates(self, wiki: str, source: str = MULTISTREAM) -> list[str]:
        """Return the dump dates (YYYYMMDD) that the mirror lists for `wiki` and `source`, newest first.

        Content exports name their folders YYYY-MM-DD; their dates are
        returned as YYYYMMDD like every other date in the pipeline.
        """
        folder = wiki_folder(wiki, source)
        if self.local_root is not None:
            local = self.local_root.joinpath(*folder)
            if not local.is_dir():
                raise DumpError(f"Wiki folder not found on the mirror: {local}. Check the mirror, the language "
                                "and the dump source.")
            names = [entry.name for entry in local.iterdir() if entry.is_dir()]
        elif self.is_http:
            url = self.location(*folder) + "/"
            try:
                response = requests.get(url, headers=self.headers, timeout=self.timeout)
                response.raise_for_status()
            except requests.RequestException as error:
                raise DumpError(f"Failed to list dump dates at {url}: {error}") from error
            # Both nginx's autoindex and Python's http.server list folders as <a href="20160501/">.
            names = re.findall(r'href="(\d{8}|\d{4}-\d{2}-\d{2})/?"', response.text)
        elif self.base.startswith("s3://"):
            names = self._list_s3_folders(folder)
        else:
            raise DumpError(
                f"Cannot list dump dates on {self.base}: listing works for http(s) and s3 URLs and local folders. "
                "Pass a concrete --date instead of 'latest'."
            )
        pattern = DATE_PATTERN if source == MULTISTREAM else ISO_DATE_PATTERN
        return sorted({name.replace("-", "") for name in names if pattern.match(name)}, reverse=True)

    def _list_s3_folders(self, folder: tuple[str, ...]) -> list[str]:
        """Return the names of the "folders" (common key prefixes) directly below `folder` in an s3 mirror."""
        try:
            import boto3
        except ImportError as error:
            raise DumpError("Listing an s3:// mirror needs boto3: pip install 'wikichar[s3]', "
                            "or pass a concrete --date instead of 'latest'.") from error
        bucket, _, key_prefix = self.base.removeprefix("s3://").partition("/")
        prefix = "/".join([part for part in key_prefix.split("/") if part] + list(folder)) + "/"
        names = []
        try:
            # boto3 reads the credentials and AWS_ENDPOINT_URL (for S3-compatible stores) from the environment.
            pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                names.extend(entry["Prefix"][len(prefix):].rstrip("/") for entry in page.get("CommonPrefixes", []))
        except READ_ERRORS as error:
            raise DumpError(f"Failed to list dump dates at s3://{bucket}/{prefix}: {error}") from error
        return names

    def read_status(self, wiki: str, date: str) -> dict:
        """Return the parsed dumpstatus.json of one dump run."""
        location = self.location(wiki, date, "dumpstatus.json")
        try:
            data = self.read_bytes(wiki, date, "dumpstatus.json")
        except DumpError as error:
            raise DumpError(
                f"{error}. Check that the mirror has a dump of {wiki} dated {date}, "
                "or use --date latest for the newest complete one."
            ) from error
        try:
            return json.loads(data)
        except ValueError as error:
            raise DumpError(f"Invalid JSON in {location}: {error}") from error


# Split-wiki names: {db}-{date}-pages-articles-multistream{part}.xml-p{first}p{last}.bz2, and
# content exports: {db}-{YYYY-MM-DD}-p{first}p{last}.xml.bz2.
PART_NUMBER = re.compile(r"-multistream(?:-index)?(\d+)\.")
PAGE_RANGE = re.compile(r"-p(\d+)p(\d+)\.")


def dump_order(name: str) -> tuple[int, int, str]:
    """Sort key that puts a run's files in page order: by part number, then first page id.

    Plain name order would put part 10 before part 2 and p1000p1999 before p5p999.
    """
    part = PART_NUMBER.search(name)
    pages = PAGE_RANGE.search(name)
    return (int(part.group(1)) if part else 0, int(pages.group(1)) if pages else 0, name)


def multistream_files(status: dict, wiki: str, date: str) -> list[DumpFile]:
    """Return the files of the multistream job of a run, in page order, or raise DumpNotReady.

    The job must be `done` and every file must be published with its url,
    size and a checksum (sha1, or md5 where that is all there is), and every
    dump file must come with its index. File names must belong to this wiki
    and date and may not contain path separators, so a tampered status file
    cannot write outside the data root.
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
    for name in sorted(files, key=dump_order):
        entry = files[name]
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
                               md5=entry.get("md5", "").lower(), folder=run_folder(wiki, date)))

    names = {file.name for file in result}
    unpaired = [file.name for file in result if not file.is_index and expected_index_name(file.name) not in names]
    if unpaired or all(file.is_index for file in result):
        raise DumpNotReady(f"{wiki} {date}: job {MULTISTREAM_JOB} must list each dump file with its index; "
                           f"no index for {', '.join(unpaired) or 'any file'}")
    return result


SHA256_LINE = re.compile(r"^([0-9A-Fa-f]{64}) [ *](.+)$")


def content_export_files(mirror: Mirror, wiki: str, date: str) -> list[DumpFile]:
    """Return the files of a content export run, in page order, or raise DumpNotReady.

    The run is complete when its folder has both _SUCCESS and SHA256SUMS.
    SHA256SUMS lines are `<sha256>  <file name>`, as sha256sum writes them;
    the XML files must be named `{wiki}-{YYYY-MM-DD}-p{first}p{last}.xml.bz2`.
    A listed name with a path separator or `..`, or an XML file with another
    name, is refused; other listed files are ignored. Sizes are not published,
    so each DumpFile's size is None.
    """
    folder = run_folder(wiki, date, CONTENT_EXPORT)
    try:
        mirror.read_bytes(*folder, "_SUCCESS")
    except DumpError as error:
        raise DumpNotReady(f"{wiki} {date}: no readable _SUCCESS marker, so the content export is still being "
                           f"written or there is none for this date ({error})") from error
    listing = mirror.read_bytes(*folder, "SHA256SUMS").decode("utf-8", errors="replace")

    name_pattern = re.compile(rf"^{re.escape(wiki)}-{iso_date(date)}-p\d+p\d+\.xml\.bz2$")
    result = []
    for number, line in enumerate(listing.splitlines(), start=1):
        if not line.strip():
            continue
        match = SHA256_LINE.match(line.strip())
        if match is None:
            raise DumpError(f"{mirror.location(*folder, 'SHA256SUMS')}, line {number}: expected '<sha256>  <file name>', "
                            f"got {line[:80]!r}")
        digest, name = match.group(1).lower(), match.group(2)
        if "/" in name or "\\" in name or ".." in name or (name.endswith(".xml.bz2") and not name_pattern.match(name)):
            raise DumpError(f"{wiki} {date}: unexpected file name {name!r} in SHA256SUMS: rejected, so nothing is downloaded")
        if name_pattern.match(name):
            result.append(DumpFile(name=name, size=None, sha256=digest, folder=folder))
    if not result:
        raise DumpNotReady(f"{wiki} {date}: SHA256SUMS of the content export lists no {wiki} XML files")
    return sorted(result, key=lambda file: dump_order(file.name))


def run_files(mirror: Mirror, wiki: str, date: str, source: str = MULTISTREAM) -> list[DumpFile]:
    """Return the verified file list of one complete run of `source`, in page order; see multistream_files."""
    if check_source(source) == MULTISTREAM:
        return multistream_files(mirror.read_status(wiki, date), wiki, date)
    return content_export_files(mirror, wiki, date)


def resolve_latest_date(mirror: Mirror, wiki: str, source: str = MULTISTREAM) -> str:
    """Return the newest date whose run of `source` is complete with every file published.

    Runs that are in progress, failed or unreadable (HTTP 404, 429 or 5xx)
    are skipped with a log line saying why. Wikimedia's `latest/` folder is
    never used, because its links can point at files of different runs.
    """
    dates = mirror.list_dates(wiki, source)
    for date in dates:
        try:
            run_files(mirror, wiki, date, source)
        except DumpError as error:
            log.info("Skipping dump %s %s: %s", wiki, date, error)
            continue
        log.info("Newest complete %s dump of %s on %s: %s", source, wiki, mirror.base, date)
        return date
    raise DumpError(
        f"No complete {source} dump of {wiki} on {mirror.base} (looked at {len(dates)} dates). "
        "Check the language, the mirror and the source, or pass --date for a known run."
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


def reuse_verified_copy(candidates: Iterable[Path], dump_file: DumpFile, destination: Path) -> Optional[Path]:
    """Place at `destination` a local file with the same size and checksum as `dump_file`, if one exists.

    A dump file that an earlier run already published (Wikimedia republishes
    unchanged files, and a run can be resumed under another date) need not be
    downloaded again. Each candidate is hashed before use, so a damaged copy
    is skipped. The copy is a hard link where the file system allows, else a
    byte copy, and appears atomically. Returns the candidate used, or None.
    """
    algorithm, expected = dump_file.checksum
    for candidate in candidates:
        if not candidate.is_file() or (dump_file.size is not None and candidate.stat().st_size != dump_file.size):
            continue
        if file_digest(candidate, algorithm) != expected:
            log.warning("Not reusing %s: its %s differs from the published one", candidate, algorithm)
            continue
        with atomic_path(destination) as temporary:
            try:
                os.link(candidate, temporary)
            except OSError:
                shutil.copyfile(candidate, temporary)
        log.info("Reused %s for %s: same size and %s, nothing downloaded", candidate, dump_file.name, algorithm)
        return candidate
    return None


def download_file(
    mirror: Mirror,
    dump_file: DumpFile,
    destination: Path,
    on_progress: Optional[Progress] = None,
    report_every: float = 5.0,
    retry: RetryPolicy = RetryPolicy(),
) -> Path:
    """Copy one dump file to `destination`, verified against its size (when known) and checksum.

    The file appears at `destination` only when both match; on a mismatch the
    partial copy is deleted and DumpError names the file and both values.
    Over http(s), the bytes received so far stay in `{destination}.part`
    between attempts and runs, and the next attempt requests only the rest.
    """
    source = mirror.location(*dump_file.folder, dump_file.name)
    size_text = f"{dump_file.size / 1e6:.1f} MB" if dump_file.size is not None else "size not published"
    log.info("Downloading %s (%s) from %s", dump_file.name, size_text, source)
    started = time.monotonic()
    if mirror.is_http:
        _download_http(mirror, source, dump_file, destination, on_progress, report_every, retry)
    else:
        _copy_stream(mirror, source, dump_file, destination, on_progress, report_every)
    elapsed = max(time.monotonic() - started, 1e-9)
    size = destination.stat().st_size
    log.info("Downloaded %s: %.1f MB in %.1f s (%.1f MB/s), %s verified",
             dump_file.name, size / 1e6, elapsed, size / 1e6 / elapsed, dump_file.checksum[0])
    return destination


def _copy_stream(mirror: Mirror, source: str, dump_file: DumpFile, destination: Path,
                 on_progress: Optional[Progress], report_every: float) -> None:
    """Copy a file from a local, file:// or s3:// mirror in one pass."""
    digest = hashlib.new(dump_file.checksum[0])
    copied = 0
    started = last_report = time.monotonic()
    try:
        with mirror.open(*dump_file.folder, dump_file.name) as remote, atomic_path(destination) as temporary:
            with open(temporary, "wb") as local:
                while chunk := remote.read(CHUNK_SIZE):
                    local.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                    now = time.monotonic()
                    if now - last_report >= report_every:
                        last_report = now
                        _report_download(dump_file.name, dump_file.size, copied, now - started, on_progress)
            _verify(dump_file, source, copied, digest.hexdigest())
    except READ_ERRORS as error:
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

    size = partial.stat().st_size if partial.exists() else 0
    try:
        _verify(dump_file, url, size, file_digest(partial, dump_file.checksum[0]) if partial.exists() else "")
    except DumpError:
        partial.unlink(missing_ok=True)
        validator_path.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    validator_path.unlink(missing_ok=True)


CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-\d+|\*)/(\d+)$")


def _total_size(response: requests.Response) -> Optional[int]:
    """Return the whole file's size that a 200, 206 or 416 response states, or None when it states none."""
    match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match:
        return int(match.group(2))
    length = response.headers.get("Content-Length", "")
    return int(length) if response.status_code == 200 and length.isdigit() else None


def _fetch_rest(session: requests.Session, mirror: Mirror, url: str, dump_file: DumpFile, partial: Path,
                validator_path: Path, on_progress: Optional[Progress], report_every: float) -> None:
    """Make one request for the bytes missing from `partial` and append them. Raises _Retryable or DumpError.

    Where the size is not published, a partial copy is resumed all the same:
    the server's Content-Range gives the file's size, and a 416 response
    whose size equals the partial copy's means the copy is already whole.
    """
    offset = partial.stat().st_size if partial.exists() else 0
    if dump_file.size is not None and offset >= dump_file.size:
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
        total = _total_size(response)
        if response.status_code == 416 and offset:
            if total == offset:
                return
            # The partial copy is longer than the file now is: the file changed, so start over.
            partial.unlink()
            raise _Retryable(f"the server rejected a range from byte {offset} (file size {total}); starting over")
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

        expected = dump_file.size if dump_file.size is not None else total
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
                        _report_download(dump_file.name, expected, copied, now - started, on_progress, copied - offset)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise _Retryable(f"connection lost at byte {copied}: {error}") from error
    if expected is not None and copied < expected:
        raise _Retryable(f"the response ended at byte {copied} of {expected}")


def _verify(dump_file: DumpFile, source: str, size: int, digest: str) -> None:
    if dump_file.size is not None and size != dump_file.size:
        raise DumpError(
            f"Size mismatch for {source}: expected {dump_file.size} bytes (dumpstatus.json), downloaded {size}. "
            "The partial file was deleted; run again to retry."
        )
    algorithm, expected = dump_file.checksum
    if digest != expected:
        published_in = "SHA256SUMS" if algorithm == "sha256" else "dumpstatus.json"
        raise DumpError(
            f"{algorithm} mismatch for {source}: expected {expected} ({published_in}), downloaded file has {digest}. "
            "The file was deleted; if this repeats, the mirror holds a corrupt copy: try another mirror."
        )


def _report_download(name: str, size: Optional[int], copied: int, elapsed: float, on_progress: Optional[Progress],
                     fetched: Optional[int] = None) -> None:
    """Log and report progress; the rate counts only the `fetched` bytes of this request (default: all).

    Without a known `size` there is no ETA and no fraction.
    """
    rate = (copied if fetched is None else fetched) / max(elapsed, 1e-9)
    if size:
        remaining = (size - copied) / rate if rate else float("inf")
        message = f"{name}: {copied / 1e6:.1f}/{size / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s, ETA {remaining:.0f} s"
    else:
        message = f"{name}: {copied / 1e6:.1f} MB (size not published), {rate / 1e6:.1f} MB/s"
    log.info("Downloading %s", message)
    if on_progress:
        on_progress(message, copied / size if size else None)
