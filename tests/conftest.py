"""Shared fixtures: the bundled mirror, a tiny pipeline configuration, a local HTTP mirror."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import luigi
import pytest

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO / "mirror"
DATA = Path(__file__).resolve().parent / "data"
BUNDLED_RUN = MIRROR / "enwiki" / "20160501"
BUNDLED_DUMP = BUNDLED_RUN / "enwiki-20160501-pages-articles-multistream.xml.bz2"

# A configuration small enough to run the whole DAG in seconds on one CPU core.
TINY = {
    "lang": "en",
    "max_shard_mb": 1.0,
    "embedding_size": 16,
    "hidden_size": 32,
    "layers": 1,
    "batch_size": 8,
    "sequence_length": 32,
    "max_steps": 40,
    "eval_interval": 20,
    "checkpoint_interval": 10,
    "eval_characters": 2000,
    "sample_length": 40,
    "prompts": ["The "],
    "temperatures": [0.5, 1.0],
    "threads": 1,
}


@pytest.fixture(autouse=True)
def fresh_luigi_instances():
    """Luigi caches task instances by parameters; tests must not share them."""
    luigi.task_register.Register.clear_instance_cache()
    yield
    luigi.task_register.Register.clear_instance_cache()


@pytest.fixture
def mirror_copy(tmp_path) -> Path:
    """A writable copy of the bundled mirror."""
    copy = tmp_path / "mirror"
    shutil.copytree(MIRROR, copy)
    return copy


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and records each request's path and User-Agent."""

    requests: list

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("User-Agent", "")))
        super().do_GET()


@pytest.fixture
def http_mirror(mirror_copy):
    """Serve a copy of the bundled mirror over HTTP on 127.0.0.1; yields (base_url, folder, requests)."""
    requests: list = []
    handler = functools.partial(type("Handler", (_RecordingHandler,), {"requests": requests}), directory=str(mirror_copy))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", mirror_copy, requests
    finally:
        server.shutdown()
        server.server_close()
