"""The scheduled rebuild command against the test mirror: built, up to date, a newer dump, the lock."""

from __future__ import annotations

import fcntl
import os
import json
import shutil
import subprocess
import sys
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.data_root import DataRoot
from tasks.rebuild import ALREADY_RUNNING, BUILT, LOCK_NAME, UP_TO_DATE, apply_retention
from tasks.shards import WriteShards
from tasks.train import TrainModel

from buckets import Bucket
from conftest import REPO, TINY
from mirror_tree import SPLIT_DATE, WIKI

pytestmark = pytest.mark.slow

NEWER_DATE = "20161001"


def _config(path: Path, base: str, data_root: Path) -> Path:
    lines = ["[TrainWikiModel]", f"mirror = {base}", f"data_root = {data_root}", "processes = 1"]
    for name, value in TINY.items():
        if name != "lang":
            lines.append(f"{name} = {json.dumps(value) if isinstance(value, list) else value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _rebuild(config: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.rebuild", "--lang", "en", "--local-scheduler", *arguments],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})


def _publish_newer_run(mirror: Path) -> None:
    """Publish the bundled run again under a newer date: the same bytes under the new date's file names."""
    source, target = mirror / WIKI / "20160501", mirror / WIKI / NEWER_DATE
    target.mkdir()
    status = json.loads((source / "dumpstatus.json").read_text())
    files = status["jobs"]["articlesmultistreamdump"]["files"]
    renamed = {}
    for name, entry in files.items():
        new_name = name.replace("20160501", NEWER_DATE)
        shutil.copyfile(source / name, target / new_name)
        renamed[new_name] = {**entry, "url": f"/{WIKI}/{NEWER_DATE}/{new_name}"}
    status["jobs"]["articlesmultistreamdump"]["files"] = renamed
    (target / "dumpstatus.json").write_text(json.dumps(status))


def test_rebuild_sequence_against_mirror(dump_mirror, tmp_path):
    base, folder, _ = dump_mirror
    data_root = tmp_path / "data"
    config = _config(tmp_path / "rebuild.cfg", base, data_root)

    first = _rebuild(config, "--keep", "1")
    assert first.returncode == BUILT, first.stderr[-3000:]
    assert list((data_root / WIKI / SPLIT_DATE / "report").glob("report-*/report.html"))

    second = _rebuild(config, "--keep", "1")
    assert second.returncode == UP_TO_DATE, second.stderr[-3000:]
    assert f"Up to date: the build of {WIKI} {SPLIT_DATE} is complete" in second.stderr

    _publish_newer_run(folder)
    third = _rebuild(config, "--keep", "1")
    assert third.returncode == BUILT, third.stderr[-3000:]
    assert list((data_root / WIKI / NEWER_DATE / "report").glob("report-*/report.html"))
    # --keep 1: the older build goes once the newer one is complete.
    assert not (data_root / WIKI / SPLIT_DATE).exists()


def test_rebuild_refuses_to_overlap(dump_mirror, tmp_path):
    base, _, _ = dump_mirror
    config = _config(tmp_path / "rebuild.cfg", base, tmp_path / "configured")
    # --data-root overrides the configured data root, so the lock taken here is the one that counts.
    data_root = tmp_path / "data"
    (data_root / WIKI).mkdir(parents=True)
    with open(data_root / WIKI / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = _rebuild(config, "--data-root", str(data_root))
    assert result.returncode == ALREADY_RUNNING, result.stderr[-3000:]
    assert "Another rebuild of enwiki is running" in result.stderr
    assert not (data_root / WIKI / SPLIT_DATE).exists()


@pytest.mark.parametrize("folders, keep, deleted", [
    ({"20160101": True, "20160201": True, "20160301": True}, 2, ["20160101"]),
    ({"20160101": True, "20160201": False, "20160301": True}, 2, []),
    ({"20160101": True, "20160201": False, "20160301": True, "20160401": False}, 1, ["20160101", "20160201"]),
    ({"20160101": True}, 1, []),
    ({"20160101": False, "20160201": True}, 3, []),
])
def test_retention_keeps_newest_complete_builds(tmp_path, folders, keep, deleted):
    for date, complete in folders.items():
        report = tmp_path / WIKI / date / "report" / "report-abc"
        report.mkdir(parents=True)
        if complete:
            (report / "report.html").write_text("<html></html>")
    assert apply_retention(DataRoot(str(tmp_path)), WIKI, keep) == deleted
    assert sorted(entry.name for entry in (tmp_path / WIKI).iterdir()) == sorted(set(folders) - set(deleted))


@pytest.fixture(params=["folder", "bucket"])
def reuse_root(request, tmp_path) -> str:
    """The data root of the reuse test: a local folder, or a bucket in an S3-compatible store on 127.0.0.1."""
    if request.param == "folder":
        yield str(tmp_path / "data")
        return
    request.getfixturevalue("s3_environment")
    bucket = Bucket("s3", "reuse", "builds")
    yield bucket.root
    bucket.remove()


def test_unchanged_dump_is_reused_not_fetched(dump_mirror, reuse_root, tmp_path):
    base, folder, handler = dump_mirror

    model_settings = {name: value for name, value in TINY.items() if name in dict(TrainModel.get_params())}

    # With a bucket, each date is built on its own machine (cache folder), so reuse goes through the store.
    def build(date: str) -> TrainModel:
        luigi.task_register.Register.clear_instance_cache()
        task = TrainModel(date=date, data_root=reuse_root, mirror=base, processes=1,
                          cache_root=str(tmp_path / f"cache-{date}"), **model_settings)
        result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
        assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
        return task

    old_model = build("20160501")
    _publish_newer_run(folder)
    handler.log.clear()
    new_model = build(NEWER_DATE)
    data = new_model.data

    # Only the run's status was read (once per entry into the download task's run()): both files have
    # the sha1 of files already verified for 20160501.
    assert {entry[0] for entry in handler.log} == {f"/{WIKI}/{NEWER_DATE}/dumpstatus.json"}
    [stats_path] = data.glob(f"{WIKI}/{NEWER_DATE}/text/policy*/*.stats.json")
    data.fetch(stats_path)
    part = json.loads(stats_path.read_text())
    assert "/20160501/text/" in part["reused_from"]
    data.fetch(stats_path.parent / part["file"])
    metadata = pq.ParquetFile(stats_path.parent / part["file"]).schema_arrow.metadata
    assert metadata[b"date"] == NEWER_DATE.encode()
    [old_stats_path] = data.glob(f"{WIKI}/20160501/text/policy*/*.stats.json")
    data.fetch(old_stats_path)
    old_part = json.loads(old_stats_path.read_text())
    data.fetch(old_stats_path.parent / old_part["file"])
    reused = pq.read_table(stats_path.parent / part["file"])
    original = pq.read_table(old_stats_path.parent / old_part["file"])
    assert reused.replace_schema_metadata(None).equals(original.replace_schema_metadata(None))

    # The tokens are the same, so the model is copied, not trained again.
    old_folder = data.local / old_model.output_dir().relative_to(old_model.data.local)
    data.fetch_folder(new_model.output_dir())
    data.fetch_folder(old_folder)
    summary = json.loads((new_model.output_dir() / "training.json").read_text())
    assert "/20160501/model/" in summary["reused_from"]
    assert summary["settings"] == new_model.settings()
    new_weights = torch.load(new_model.output_dir() / "model.pt", weights_only=True)["model"]
    old_weights = torch.load(old_folder / "model.pt", weights_only=True)["model"]
    assert new_weights.keys() == old_weights.keys()
    assert all(torch.equal(new_weights[name], old_weights[name]) for name in new_weights)
