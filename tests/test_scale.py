"""Two worker processes build one model together through a luigid on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch

from pipeline.data_root import DataRoot

from buckets import Bucket
from conftest import REPO, TINY
from mirror_tree import SPLIT_DATE, WIKI

pytestmark = pytest.mark.slow

STAGE_FINISHED = re.compile(r"Stage (\w+) finished in [\d.]+ s: \S+ \((\S+)\)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(port: int, method: str, **data) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}", timeout=10) as response:
        return json.load(response)["response"]


def _build_done(port: int) -> bool:
    done = _api(port, "task_list", status="DONE", upstream_status="", search="TrainWikiModel")
    failed = _api(port, "task_list", status="FAILED", upstream_status="", search="")
    assert not failed, f"tasks failed: {sorted(failed)}"
    return bool(done)


@pytest.fixture
def scale_config(tmp_path, monkeypatch) -> Path:
    """Settings for luigid and the workers of one test, read after luigi.cfg through LUIGI_CONFIG_PATH."""
    config = tmp_path / "scale.cfg"
    # 4 downloads at once from the test mirror, and workers that ask for work every 0.2 to 0.4 s
    # instead of up to 5 s, so that the short tasks of the bundled dump spread over both workers.
    config.write_text("[resources]\ndump_connections_127_0_0_1 = 4\n\n"
                      "[worker]\nwait_interval = 0.2\nwait_jitter = 0.2\n")
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(config))
    return config


@pytest.fixture
def luigid(tmp_path, scale_config):
    """A luigid on 127.0.0.1 with a free port; yields the port."""
    port = _free_port()
    (tmp_path / "luigid-logs").mkdir()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(tmp_path / "luigid-state.pickle"), "--logdir", str(tmp_path / "luigid-logs")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _api(port, "task_list", status="", upstream_status="", search="")
                break
            except OSError:
                assert process.poll() is None, "luigid exited"
                assert time.monotonic() < deadline, "luigid did not answer within 60 s"
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(params=["shared folder", "object storage"])
def data_root(request, tmp_path) -> str:
    """The data root both workers use: a folder they share, or a bucket in an S3-compatible store on 127.0.0.1."""
    if request.param == "shared folder":
        yield str(tmp_path / "data")
        return
    request.getfixturevalue("s3_environment")
    bucket = Bucket("s3", "scale", "builds")
    yield bucket.root
    bucket.remove()


def test_two_workers_build_once_together(luigid, dump_mirror, data_root, tmp_path):
    base, _, handler = dump_mirror
    handler.delay = 1.0
    command = [sys.executable, "-m", "luigi", "--module", "tasks", "TrainWikiModel",
               "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid), "--workers", "2",
               "--worker-keep-alive", "--no-lock", "--data-root", data_root,
               "--mirror", base, "--date", SPLIT_DATE, "--processes", "1"]
    for name, value in TINY.items():
        command += [f"--{name.replace('_', '-')}", json.dumps(value) if isinstance(value, list) else str(value)]

    # Both workers are assistants: they also run the tasks that another worker's tasks add while running
    # (each file's download and extraction), and with keep-alive they ask for work until they are stopped.
    started = time.monotonic()
    # With object storage each worker has its own cache folder, as on separate machines with no shared disk.
    workers = [subprocess.Popen([*command, "--assistant", "--cache-root", str(tmp_path / f"cache-{number}")], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for number in range(2)]
    try:
        deadline = time.monotonic() + 600
        while not _build_done(luigid):
            assert all(worker.poll() is None for worker in workers), "a worker exited"
            assert time.monotonic() < deadline, "the build did not finish within 600 s"
            time.sleep(0.5)
        seconds = time.monotonic() - started
    finally:
        for worker in workers:
            worker.terminate()
        logs = [worker.communicate(timeout=60)[1] for worker in workers]

    # Worker exit codes are no guide (each may report "not run" for the other's tasks), so check luigid and the logs.
    finished = [match.groups() for log in logs for match in STAGE_FINISHED.finditer(log)]
    task_ids = [task_id for _, task_id in finished]
    assert len(task_ids) == len(set(task_ids)), f"a task ran twice: {sorted(task_ids)}"
    per_worker = [len(STAGE_FINISHED.findall(log)) for log in logs]
    assert all(count > 0 for count in per_worker), f"both workers should have run tasks, ran {per_worker}: {logs[per_worker.index(0)][-4000:]}"
    stages = {stage for stage, _ in finished}
    assert stages == {"dump", "text", "shards", "vocabulary", "tokens", "model", "report"}
    # 6 files, 3 dump parts plus the templates and the text stage, and one task for each later stage.
    assert len(finished) == 1 + 6 + 1 + 3 + 1 + 5

    done = _api(luigid, "task_list", status="DONE", upstream_status="", search="")
    assert any(task_id.startswith("TrainWikiModel") for task_id in done), sorted(done)
    assert not _api(luigid, "task_list", status="FAILED", upstream_status="", search="")
    assert not _api(luigid, "task_list", status="PENDING", upstream_status="", search="")

    data = DataRoot(data_root, tmp_path / "checker-cache")
    [model_file] = data.glob(f"{WIKI}/{SPLIT_DATE}/model/lstm-*/model.pt")
    model = model_file.parent
    data.fetch_folder(model)
    assert torch.load(model / "model.pt", weights_only=True)["step"] == TINY["max_steps"]
    report = data.glob(f"{WIKI}/{SPLIT_DATE}/report/report-*/report.html")
    assert len(report) == 1
    assert data.exists(report[0])
    print(f"two workers built the model in {seconds:.1f} s, running {per_worker} tasks")
