"""The data root: a local folder, or an s3:// or gs:// prefix worked on through a local cache.

With a local folder, every stage reads and writes it directly, and atomic
renames make each output appear whole (see pipeline.storage).

With object storage, a stage works on local files under a cache folder that
mirrors the data root's layout. Before the stage runs, the objects it reads
are downloaded into the cache through smart_open. After it succeeds, its
files are uploaded, and the object that marks the output complete is
uploaded last:

- an output folder gets a `_SUCCESS` object, with the name, size and sha256
  of each of its files;
- an output file is its own marker, and any companion files (a Parquet part
  beside its stats) are uploaded before it.

Object stores make each object visible only when its upload has finished,
so a worker killed mid-upload leaves no partial object, only complete ones
without their marker. Such an output counts as missing and is built again.
Leftovers of the killed attempt inside an output folder are deleted before
the new upload.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, Optional

import smart_open

from pipeline.storage import atomic_path, file_digest

log = logging.getLogger(__name__)

OBJECT_SCHEMES = ("s3", "gs")
SUCCESS_MARKER = "_SUCCESS"
COPY_BUFFER = 8 << 20
# smart_open's default S3 part size (50 MiB): smaller objects are uploaded in one request.
MULTIPART_THRESHOLD = 50 * 1024**2


class StorageError(RuntimeError):
    """An object store request failed, or the data root is not usable."""


def default_cache_root() -> Path:
    """Return the folder for local copies of object storage data roots: $XDG_CACHE_HOME/wikichar or ~/.cache/wikichar."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wikichar"


class ObjectStore:
    """Existence checks, sizes, listings and deletions of objects in one bucket. Reads and writes use smart_open."""

    def __init__(self, scheme: str, bucket: str):
        self.scheme = scheme
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    def transport_params(self, size: Optional[int] = None) -> dict[str, Any]:
        """Return smart_open's transport_params for reading, or for writing `size` bytes."""
        return {}

    def size(self, key: str) -> Optional[int]:
        """Return the object's size in bytes, or None if there is no such object."""
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        """Return the keys of every object whose key starts with `prefix`."""
        raise NotImplementedError

    def delete(self, keys: list[str]) -> None:
        raise NotImplementedError

    def check_bucket(self) -> None:
        """Raise StorageError if the bucket does not exist or these credentials cannot reach it."""
        raise NotImplementedError


class S3Store(ObjectStore):
    """An S3 bucket, or a bucket of an S3-compatible store that AWS_ENDPOINT_URL names."""

    def __init__(self, bucket: str):
        super().__init__("s3", bucket)
        try:
            import boto3
            import botocore.exceptions
        except ImportError as error:
            raise StorageError("An s3:// data root needs boto3: run pip install -e '.[s3]' in the repository "
                               "folder.") from error
        # boto3 reads the credentials, the region and AWS_ENDPOINT_URL from the environment.
        self.client = boto3.client("s3")
        self.client_error = botocore.exceptions.ClientError

    def transport_params(self, size=None):
        # smart_open writes S3 objects as multipart uploads by default. A killed one leaves parts that S3 keeps
        # (and bills) until aborted, so objects smaller than one part go up in a single PUT instead.
        if size is None:
            return {"client": self.client}
        return {"client": self.client, "multipart_upload": size >= MULTIPART_THRESHOLD}

    def check_bucket(self):
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client_error as error:
            raise StorageError(f"Cannot use the bucket s3://{self.bucket}: {error}. Create it, or check the "
                               "credentials, the region and AWS_ENDPOINT_URL.") from error

    def size(self, key):
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except self.client_error as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"Failed to read the size of {self.uri(key)}: {error}") from error

    def keys(self, prefix):
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(entry["Key"] for entry in page.get("Contents", []))
        except self.client_error as error:
            raise StorageError(f"Failed to list {self.uri(prefix)}: {error}") from error
        return keys

    def delete(self, keys):
        # DeleteObjects takes at most 1,000 keys per request.
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            try:
                response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except self.client_error as error:
                raise StorageError(f"Failed to delete objects under {self.uri('')}: {error}") from error
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StorageError(f"Failed to delete {len(response['Errors'])} objects, such as "
                                   f"{self.uri(first['Key'])}: {first.get('Message', first.get('Code'))}. Check that the "
                                   "credentials may delete objects in this bucket.")


class GCSStore(ObjectStore):
    """A Google Cloud Storage bucket. STORAGE_EMULATOR_HOST points the client at an emulator."""

    def __init__(self, bucket: str):
        super().__init__("gs", bucket)
        try:
            from google.api_core import exceptions
            from google.cloud import storage
        except ImportError as error:
            raise StorageError("A gs:// data root needs google-cloud-storage: run pip install -e '.[gcs]' in the "
                               "repository folder.") from error
        self.client = storage.Client()
        self.bucket_handle = self.client.bucket(bucket)
        self.api_error = exceptions.GoogleAPIError

    def transport_params(self, size=None):
        return {"client": self.client}

    def check_bucket(self):
        try:
            found = self.bucket_handle.exists()
        except self.api_error as error:
            raise StorageError(f"Cannot use the bucket gs://{self.bucket}: {error}. Check the credentials.") from error
        if not found:
            raise StorageError(f"Bucket gs://{self.bucket} not found: create it, or fix the data root.")

    def size(self, key):
        try:
            blob = self.bucket_handle.get_blob(key)
        except self.api_error as error:
            raise StorageError(f"Failed to read the size of {self.uri(key)}: {error}") from error
        return None if blob is None else blob.size

    def keys(self, prefix):
        try:
            return [blob.name for blob in self.client.list_blobs(self.bucket, prefix=prefix)]
        except self.api_error as error:
            raise StorageError(f"Failed to list {self.uri(prefix)}: {error}") from error

    def delete(self, keys):
        for key in keys:
            try:
                self.bucket_handle.delete_blob(key)
            except self.api_error as error:
                raise StorageError(f"Failed to delete {self.uri(key)}: {error}") from error


def open_store(scheme: str, bucket: str) -> ObjectStore:
    return S3Store(bucket) if scheme == "s3" else GCSStore(bucket)


class DataRoot:
    """The location of a build's outputs, and the local folder that stages read and write.

    Tasks always work with local paths under `local`. For a local data root
    that is the root itself and every method below is a cheap local check or
    a no-op. For an object storage root, `local` is a cache folder, and
    `fetch` and `publish` move files between it and the store.
    """

    def __init__(self, root: str, cache_root: str | os.PathLike | None = None):
        self.root = str(root)
        parsed = urllib.parse.urlparse(self.root)
        self.remote = parsed.scheme in OBJECT_SCHEMES
        self._scheme_bucket = (parsed.scheme, parsed.netloc)
        self._store: Optional[ObjectStore] = None
        self._store_pid = 0
        if not self.remote:
            if parsed.scheme and len(parsed.scheme) > 1:
                raise StorageError(f"Invalid data_root {self.root!r}: expected a local folder or an s3:// or gs:// URI.")
            # "s3//bucket", a URI without its colon, would otherwise become a local folder named s3.
            mistyped = re.match(r"(s3|gs)//", self.root, re.IGNORECASE)
            if mistyped:
                raise StorageError(f"Invalid data_root {self.root!r}: expected {mistyped.group(1).lower()}://BUCKET/PREFIX. "
                                   f"For a local folder, write ./{self.root}.")
            self.local = Path(self.root)
            self.prefix = ""
            return

        if not parsed.netloc:
            raise StorageError(f"Invalid data_root {self.root!r}: expected {parsed.scheme}://BUCKET/PREFIX.")
        self.prefix = parsed.path.strip("/")
        self.local = Path(cache_root or default_cache_root()) / parsed.scheme / parsed.netloc / self.prefix

    @property
    def store(self) -> ObjectStore:
        """The bucket's client, made on first use in each process.

        Made lazily, so that defining tasks needs no credentials. Made again
        in a forked process (Luigi runs each task in one with --workers above
        1), because a client's connection pool must not be shared across a fork.
        """
        if not self.remote:
            raise StorageError(f"The data root {self.root} is a local folder, which has no object store.")
        if self._store is None or self._store_pid != os.getpid():
            self._store = open_store(*self._scheme_bucket)
            self._store_pid = os.getpid()
        return self._store

    def key(self, path: Path) -> str:
        relative = Path(path).relative_to(self.local).as_posix()
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def location(self, path: Path) -> str:
        """Return where `path` lives for users: the local path, or its s3:// or gs:// URI."""
        return self.store.uri(self.key(path)) if self.remote else str(path)

    def exists(self, path: Path) -> bool:
        return self.size(path) is not None

    def size(self, path: Path) -> Optional[int]:
        """Return the size of the stored file, or None if it does not exist."""
        if not self.remote:
            return path.stat().st_size if path.is_file() else None
        return self.store.size(self.key(path))

    def folder_complete(self, folder: Path) -> bool:
        """Return True if an output folder is complete: present locally, or with its marker in the store."""
        return self.exists(folder / SUCCESS_MARKER) if self.remote else folder.is_dir()

    def glob(self, pattern: str) -> list[Path]:
        """Return the local paths of the stored files that match `pattern` (relative to the root), sorted.

        The pattern's first component must be literal, such as a wiki name,
        because the listing of an object store starts from it.
        """
        if not self.remote:
            return sorted(self.local.glob(pattern))
        first = pattern.split("/", 1)[0]
        if any(character in first for character in "*?["):
            raise ValueError(f"Invalid pattern {pattern!r}: its first component must be literal.")
        base = f"{self.prefix}/" if self.prefix else ""
        matches = []
        for key in self.store.keys(f"{base}{first}/"):
            relative = key[len(base):]
            if _matches(relative, pattern):
                matches.append(self.local / relative)
        return sorted(matches)

    def fetch(self, *paths: Path) -> None:
        """Download the stored files that the cache lacks, or contains at another size.

        Raises StorageError naming the object when it does not exist.
        """
        if not self.remote:
            return
        for path in paths:
            size = self.store.size(self.key(path))
            if size is None:
                raise StorageError(f"Missing {self.location(path)}: the stage that writes it has not finished. "
                                   "Run the pipeline again to build it.")
            if path.is_file() and path.stat().st_size == size:
                continue
            self._download(path, size)

    def fetch_folder(self, folder: Path) -> None:
        """Copy a complete output folder into the cache, checked against its marker's sizes and sha256."""
        if not self.remote:
            return
        marker = folder / SUCCESS_MARKER
        self.fetch(marker)
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        for entry in files:
            path = folder / entry["name"]
            if path.is_file() and path.stat().st_size == entry["size"]:
                continue
            self._download(path, entry["size"])
            digest = file_digest(path, "sha256")
            if digest != entry["sha256"]:
                path.unlink()
                raise StorageError(f"Corrupt download of {self.location(path)}: sha256 {digest}, expected "
                                   f"{entry['sha256']} from its {SUCCESS_MARKER}. Run again to download it again.")

    def publish(self, *paths: Path) -> None:
        """Upload local files in the given order; the last one is the output's marker, so it goes last."""
        if not self.remote:
            return
        for path in paths:
            self._upload(path)

    def publish_folder(self, folder: Path) -> None:
        """Upload an output folder, then its `_SUCCESS` marker with each file's name, size and sha256.

        Objects already under the folder's prefix are leftovers of a killed
        attempt (the output is incomplete, or it would not be built again),
        so they are deleted first.
        """
        if not self.remote:
            return
        self.remove_tree(folder, keep_local=True)
        files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != SUCCESS_MARKER)
        entries = []
        for path in files:
            self._upload(path)
            entries.append({"name": path.relative_to(folder).as_posix(), "size": path.stat().st_size,
                            "sha256": file_digest(path, "sha256")})
        marker = folder / SUCCESS_MARKER
        with atomic_path(marker) as temporary:
            temporary.write_text(json.dumps({"files": entries}, indent=2) + "\n", encoding="utf-8")
        self._upload(marker)

    def remove_tree(self, folder: Path, keep_local: bool = False) -> int:
        """Delete every stored file under `folder` (and its local copy unless `keep_local`); return the count."""
        if not keep_local and folder.exists():
            shutil.rmtree(folder)
        if not self.remote:
            return 0
        keys = self.store.keys(self.key(folder).rstrip("/") + "/")
        self.store.delete(keys)
        return len(keys)

    def child_folders(self, folder: Path) -> list[str]:
        """Return the names of the folders directly under `folder` that hold stored files."""
        if not self.remote:
            return sorted(entry.name for entry in folder.iterdir() if entry.is_dir()) if folder.is_dir() else []
        prefix = self.key(folder).rstrip("/") + "/"
        return sorted({key[len(prefix):].split("/", 1)[0] for key in self.store.keys(prefix) if "/" in key[len(prefix):]})

    @contextlib.contextmanager
    def uploading_changes(self, path: Path, interval: float = 30.0) -> Iterator[None]:
        """Upload `path` whenever it changes, checking every `interval` seconds, and once more if the block raises.

        For files that are replaced while a stage runs, such as training
        checkpoints, so that another machine can resume from the last one.
        A block that ends normally has made the stage's output, which is
        uploaded anyway, so `path` is not uploaded again then. A failed upload
        is logged and retried at the next check; it does not stop the stage.
        A no-op for a local data root.
        """
        if not self.remote:
            yield
            return
        uploaded: list = [None]
        stop = threading.Event()

        def upload_if_changed() -> None:
            if not path.is_file():
                return
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            if version == uploaded[0]:
                return
            try:
                self._upload(path)
            # Any error: boto3 and google-cloud-storage raise their own types, and a checkpoint that failed
            # to upload must not end the training that made it.
            except Exception as error:  # noqa: BLE001
                log.warning("Failed to upload %s, will retry: %s", self.location(path), error)
                return
            uploaded[0] = version
            log.info("Uploaded %s", self.location(path))

        def watch() -> None:
            while not stop.wait(interval):
                upload_if_changed()

        watcher = threading.Thread(target=watch, name=f"upload {path.name}", daemon=True)
        watcher.start()
        try:
            yield
        except BaseException:
            stop.set()
            watcher.join()
            upload_if_changed()
            raise
        stop.set()
        watcher.join()

    def _download(self, path: Path, size: int) -> None:
        uri = self.location(path)
        started = time.monotonic()
        with atomic_path(path) as temporary:
            with smart_open.open(uri, "rb", compression="disable",
                                 transport_params=self.store.transport_params()) as source, open(temporary, "wb") as target:
                shutil.copyfileobj(source, target, COPY_BUFFER)
            received = temporary.stat().st_size
            if received != size:
                raise StorageError(f"Incomplete download of {uri}: {received} bytes, expected {size}. Run again.")
        _log_transfer("Downloaded", uri, size, time.monotonic() - started)

    def _upload(self, path: Path) -> None:
        uri = self.location(path)
        started = time.monotonic()
        # compression="disable": smart_open would otherwise recompress a .bz2 or .gz file by its name.
        transport_params = self.store.transport_params(path.stat().st_size)
        with open(path, "rb") as source, smart_open.open(uri, "wb", compression="disable",
                                                          transport_params=transport_params) as target:
            shutil.copyfileobj(source, target, COPY_BUFFER)
        _log_transfer("Uploaded", uri, path.stat().st_size, time.monotonic() - started)


def _log_transfer(verb: str, uri: str, size: int, seconds: float) -> None:
    # Small files (markers, stats) would flood the log, so only transfers of 1 MB or more are logged.
    if size >= 1_000_000:
        log.info("%s %s: %.1f MB in %.1f s (%.1f MB/s)", verb, uri, size / 1e6, seconds, size / 1e6 / max(seconds, 1e-9))


def _matches(relative: str, pattern: str) -> bool:
    """Match a key against a glob pattern component by component, as Path.glob does: `*` stops at `/`."""
    parts, pattern_parts = relative.split("/"), pattern.split("/")
    return len(parts) == len(pattern_parts) and all(
        fnmatch.fnmatchcase(part, pattern_part) for part, pattern_part in zip(parts, pattern_parts))
