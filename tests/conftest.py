"""Shared fixtures: the bundled mirror, a tiny pipeline configuration, a local HTTP mirror."""

from __future__ import annotations

import functools
import http.server
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import luigi
import pytest

from pipeline.tokens import encode_texts, open_tokens
from pipeline.train import CHECKPOINT, TrainingSettings, train
from pipeline.vocabulary import build_vocabulary

from mirror_tree import UNAVAILABLE_DATE, build_mirror_tree

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO / "mirror"
DATA = Path(__file__).resolve().parent / "data"
BUNDLED_RUN = MIRROR / "enwiki" / "20160501"
BUNDLED_DUMP = BUNDLED_RUN / "enwiki-20160501-pages-articles-multistream.xml.bz2"
# The bundled dump's 206 pages: 98 articles, 8 disambiguation pages and 99 redirects
# in namespace 0, and 1 redirect in namespace 4 (skipped for its namespace).
BUNDLED_ARTICLES = 98
BUNDLED_SKIPPED = {"redirect": 99, "disambiguation": 8, "namespace": 1}

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
    "warmup_steps": 5,
    "eval_interval": 20,
    "checkpoint_interval": 10,
    "eval_characters": 2000,
    "sample_length": 40,
    "prompts": ["The "],
    "temperatures": [0.5, 1.0],
    "threads": 1,
}


def train_small_model(folder: Path, text: str, device=None, **overrides) -> Path:
    """Train a small LSTM on `text` (one article) in `folder`; return its checkpoint's path."""
    vocabulary, _ = build_vocabulary(Counter(text), 1.0)
    encode_texts([text], vocabulary, folder / "tokens.bin")
    tokens = open_tokens(folder / "tokens.bin", vocabulary.size)
    settings = {"embedding_size": 16, "hidden_size": 64, "layers": 1, "dropout": 0.0, "batch_size": 16,
                "sequence_length": 32, "learning_rate": 1e-2, "max_steps": 200, "warmup_steps": 10,
                "eval_interval": 100, "eval_characters": 1000, "checkpoint_interval": 100, **overrides}
    train(TrainingSettings(**settings), vocabulary, tokens, tokens, folder / "work", device=device)
    return folder / "work" / CHECKPOINT


def terminate_once_training(command: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run `command`, send it SIGTERM after its first training progress line, and return (exit status, stderr).

    The first "Training: step" line is logged 50 steps in, so training is under way when the signal arrives.
    """
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        deadline = time.monotonic() + timeout
        for line in process.stderr:
            seen.append(line)
            if "Training: step" in line:
                break
            assert time.monotonic() < deadline, f"training did not start within {timeout:.0f} s"
        process.send_signal(signal.SIGTERM)
        seen.append(process.stderr.read())
    finally:
        process.wait(timeout=timeout)
    return process.returncode, "".join(seen)


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


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from `root` with byte ranges and an ETag, lists folders, and injects faults on request.

    Class attributes set per server: `root`, `log` (list of (path, Range, If-Range, status)),
    `faults` (faults consumed one per request, whatever the path; empty means ok),
    `file_faults` (file name -> faults consumed one per request for that file), and
    `ignore_range` (respond 200 to range requests), `unavailable` (request paths that
    always return 503), and `delay` (seconds to wait before sending a file). A fault is one of:
    "ok"; "503"; "drop" (send a third of the body, then close the connection);
    "drop-change" (drop, then give the file a new modification time and so a new ETag,
    as a mirror that replaced the file would); "corrupt" (send the body with one byte changed).
    """

    protocol_version = "HTTP/1.1"
    root: Path
    log: list
    faults: list
    file_faults: dict
    ignore_range = False
    unavailable: frozenset = frozenset()
    delay = 0.0

    def log_message(self, format, *args):
        pass

    def _send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_listing(self, folder: Path) -> None:
        # Like nginx's autoindex: one link per entry, folders with a trailing slash.
        links = "".join(f'<a href="{entry.name}{"/" if entry.is_dir() else ""}">{entry.name}</a>\n'
                        for entry in sorted(folder.iterdir()))
        body = f"<html><body><pre>\n{links}</pre></body></html>\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.root / self.path.lstrip("/")
        per_file = self.file_faults.get(path.name)
        if per_file:
            fault = per_file.pop(0)
        elif self.faults:
            fault = self.faults.pop(0)
        else:
            fault = "ok"
        requested = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if self.path in self.unavailable:
            fault = "503"
        if fault == "503" or not path.exists():
            status = 503 if fault == "503" else 404
            self.log.append((self.path, requested, if_range, status))
            self._send_empty(status)
            return
        if path.is_dir():
            self.log.append((self.path, requested, if_range, 200))
            self._send_listing(path)
            return

        # A slow mirror, so that downloads overlap in tests with several workers.
        time.sleep(self.delay)
        data = path.read_bytes()
        etag = '"%d-%d"' % (len(data), path.stat().st_mtime_ns)
        start = 0
        status = 200
        if requested and not self.ignore_range and (if_range is None or if_range == etag):
            start = int(requested.removeprefix("bytes=").split("-")[0])
            status = 206
        if start >= len(data) and status == 206:
            self.log.append((self.path, requested, if_range, 416))
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        if fault == "corrupt":
            body = body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 0xFF]) + body[len(body) // 2 + 1:]
        self.log.append((self.path, requested, if_range, status))
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if fault in ("drop", "drop-change"):
            # Send part of the body, then close the connection as a reset would.
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            if fault == "drop-change":
                stat = path.stat()
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
            return
        self.wfile.write(body)


def _serve(root: Path):
    handler = type("Handler", (_RangeHandler,), {"root": root, "log": [], "faults": [], "file_faults": {},
                                                 "ignore_range": False})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, handler


@pytest.fixture
def range_server(mirror_copy):
    """Serve a copy of the bundled mirror with Range support and fault injection on 127.0.0.1."""
    server, handler = _serve(mirror_copy)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mirror_tree_template(tmp_path_factory) -> Path:
    """The mirror tree of tests/mirror_tree.py, built once per session."""
    return build_mirror_tree(MIRROR, tmp_path_factory.mktemp("tree") / "mirror")


@pytest.fixture
def dump_mirror(mirror_tree_template, tmp_path):
    """Serve a copy of the mirror tree (several dated runs, split parts, content exports) on 127.0.0.1.

    Yields (base_url, folder, handler); the dumpstatus.json of the 20160801 run always returns 503.
    """
    folder = tmp_path / "tree"
    shutil.copytree(mirror_tree_template, folder)
    server, handler = _serve(folder)
    handler.unavailable = frozenset({f"/enwiki/{UNAVAILABLE_DATE}/dumpstatus.json"})
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, handler
    finally:
        server.shutdown()
        server.server_close()


class KillSwitch:
    """WSGI middleware for the S3 test server: SIGKILL a process when its upload of a matching key arrives.

    `arm(pid, pattern)` sets the process and a regular expression matched
    against the request path (/bucket/key). The first matching PUT kills the
    process before the store receives the object, as a machine lost mid-upload
    would, and responds to the dead process's request with a 503. `fired` is
    set once it has done so.
    """

    def __init__(self, app):
        self.app = app
        self.pid: Optional[int] = None
        self.pattern: Optional[re.Pattern] = None
        self.fired = threading.Event()

    def arm(self, pid: int, pattern: str) -> None:
        self.fired.clear()
        self.pid, self.pattern = pid, re.compile(pattern)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if self.pattern is not None and environ["REQUEST_METHOD"] == "PUT" and self.pattern.search(path):
            os.kill(self.pid, signal.SIGKILL)
            self.pattern = None
            self.fired.set()
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def s3_server():
    """Start an S3-compatible store (moto) on 127.0.0.1 behind a KillSwitch; yields (endpoint URL, kill switch)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    switch = KillSwitch(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, switch, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", switch
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def s3_environment(s3_server, monkeypatch):
    """Point boto3 (and smart_open through it) at the test store, here and in subprocesses; yields the kill switch."""
    endpoint, switch = s3_server
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield switch
    switch.pattern = None


@pytest.fixture(scope="session")
def gcs_server():
    """Start a Google Cloud Storage emulator on 127.0.0.1; yields its URL for STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_environment(gcs_server, monkeypatch):
    """Point google-cloud-storage (and smart_open through it) at the emulator, here and in subprocesses."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test")
