"""Atomic file and directory writes, and small JSON helpers.

Every output of the pipeline appears in one step: it is written under a
temporary name beside its final path and renamed into place only when it is
complete. A run killed half way leaves a temporary entry, never a half
written output, and the next attempt removes the leftovers of dead processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

TEMPORARY_MARKER = ".tmp-"


def _temporary_sibling(final: Path) -> Path:
    return final.with_name(f".{final.name}{TEMPORARY_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(final: Path) -> int:
    """Delete temporary siblings of `final` left by processes that no longer run.

    Returns how many were removed. Entries of live processes are kept, so two
    processes writing the same output never delete each other's work.
    """
    removed = 0
    prefix = f".{final.name}{TEMPORARY_MARKER}"
    if not final.parent.is_dir():
        return 0
    for entry in final.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and _process_is_alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path that is renamed to `final` when the block succeeds.

    With `directory=True` the temporary path is an empty directory. An output
    that already exists is replaced: the old one is moved aside first and
    deleted after the new one is in place. If the block raises, the temporary
    path is deleted and `final` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    temporary = _temporary_sibling(final)
    if directory:
        temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise

    if directory and final.exists():
        # os.replace cannot swap a non-empty directory, so move the old one aside.
        discarded = _temporary_sibling(final)
        final.rename(discarded)
        temporary.rename(final)
        shutil.rmtree(discarded, ignore_errors=True)
    else:
        os.replace(temporary, final)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as indented UTF-8 JSON, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Return the hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def settings_digest(settings: dict[str, Any], length: int = 10) -> str:
    """Return a short stable hash of a JSON-serialisable settings dict.

    Output folders carry this hash, so any change to a setting that changes
    an output's bytes gives a new folder instead of reusing a stale one.
    """
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:length]
