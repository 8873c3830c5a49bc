"""Atomic outputs: complete or absent, never half written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.storage import atomic_path, remove_stale_temporaries, settings_digest


def test_file_appears_only_on_success(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as temporary:
            temporary.write_text("half")
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []

    with atomic_path(final) as temporary:
        temporary.write_text("whole")
    assert final.read_text() == "whole"
    assert list(tmp_path.iterdir()) == [final]


def test_directory_replaces_existing_output(tmp_path):
    final = tmp_path / "shards"
    final.mkdir()
    (final / "old.parquet").write_text("old")
    with atomic_path(final, directory=True) as temporary:
        (temporary / "new.parquet").write_text("new")
    assert [path.name for path in final.iterdir()] == ["new.parquet"]
    assert [path.name for path in tmp_path.iterdir()] == ["shards"]


def test_leftovers_of_dead_process_removed(tmp_path):
    final = tmp_path / "out"
    # A child process leaves a temporary file behind, as a killed run would.
    code = f"from pipeline.storage import atomic_path\nimport os\nwith atomic_path({str(final)!r}) as t:\n    t.write_text('x')\n    os._exit(9)\n"
    subprocess.run([sys.executable, "-c", code], check=False)
    leftovers = [path for path in tmp_path.iterdir() if path.name.startswith(".out.tmp-")]
    assert len(leftovers) == 1
    assert not final.exists()

    assert remove_stale_temporaries(final) == 1
    assert list(tmp_path.iterdir()) == []


def test_live_process_temporaries_kept(tmp_path):
    final = tmp_path / "out"
    live = tmp_path / f".out.tmp-{os.getpid()}-abcdef12"
    live.write_text("in progress")
    assert remove_stale_temporaries(final) == 0
    assert live.exists()


def test_settings_digest_is_stable_and_order_free():
    assert settings_digest({"a": 1, "b": [1, 2]}) == settings_digest({"b": [1, 2], "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})
