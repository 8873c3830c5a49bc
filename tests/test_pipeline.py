"""The whole DAG on the bundled dump, through Luigi, with a tiny configuration."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import torch

from tasks import TrainWikiModel

from conftest import BUNDLED_ARTICLES, BUNDLED_SKIPPED, MIRROR, REPO, TINY, terminate_once_training

pytestmark = pytest.mark.slow

STARTED: list[str] = []


@luigi.Task.event_handler(luigi.Event.START)
def _record_start(task):
    STARTED.append(task.get_task_family())


def _build(data_root: Path, **overrides) -> luigi.execution_summary.LuigiRunResult:
    STARTED.clear()
    luigi.task_register.Register.clear_instance_cache()
    task = TrainWikiModel(data_root=str(data_root), mirror=str(MIRROR), **{**TINY, **overrides})
    return luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")


def _one(folder: Path, pattern: str) -> Path:
    matches = sorted(folder.glob(pattern))
    assert len(matches) == 1, f"expected one {pattern} in {folder}, found {matches}"
    return matches[0]


def _outputs(data_root: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in data_root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One tiny build shared by the read-only checks below."""
    data_root = tmp_path_factory.mktemp("data")
    started = time.monotonic()
    result = _build(data_root)
    return data_root, result, time.monotonic() - started


def test_build_succeeds_quickly(built):
    _, result, seconds = built
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    assert seconds < 120


def test_build_writes_every_artifact(built):
    data_root, _, _ = built
    run = data_root / "enwiki" / "20160501"

    listing = json.loads((run / "dump" / "multistream" / "files.json").read_text())
    assert {entry["name"] for entry in listing["files"]} == {path.name for path in (MIRROR / "enwiki" / "20160501").glob("*.bz2")}
    for entry in listing["files"]:
        assert (run / "dump" / "multistream" / entry["name"]).stat().st_size == entry["size"]

    text = _one(run / "text", "policy*")
    stats = json.loads((text / "stats.json").read_text())
    assert stats["articles"] == BUNDLED_ARTICLES
    assert stats["skipped"] == BUNDLED_SKIPPED
    assert [part["file"] for part in stats["parts"]] == ["enwiki-20160501-pages-articles-multistream.parquet"]
    assert pq.ParquetFile(text / stats["parts"][0]["file"]).metadata.num_rows == BUNDLED_ARTICLES

    shards = _one(run / "shards", "val*")
    manifest = json.loads((shards / "_manifest.json").read_text())
    assert sum(split["articles"] for split in manifest["splits"].values()) == BUNDLED_ARTICLES
    assert all((shards / shard["file"]).exists() for shard in manifest["shards"])
    assert manifest["source"]["dump_files"] == listing["files"]
    # The shard folder reads as one dataset: the manifest's name starts with "_" so readers skip it.
    assert len(pd.read_parquet(shards)) == BUNDLED_ARTICLES
    assert ds.dataset(shards, format="parquet").count_rows() == BUNDLED_ARTICLES

    vocabulary = json.loads(_one(run / "vocabulary", "coverage*/vocabulary.json").read_text())
    assert vocabulary["coverage"] >= 0.9999
    assert 100 < vocabulary["size"] < 400

    model = _one(run / "model", "lstm-1x32-*")
    checkpoint = torch.load(model / "model.pt", weights_only=True)
    assert checkpoint["step"] == TINY["max_steps"]
    assert checkpoint["vocabulary_fingerprint"] == vocabulary["fingerprint"]
    assert not list((run / "model").glob(".*")), "the work folder and temporaries must be gone"

    report = _one(run / "report", "report-*")
    assert {path.name for path in report.iterdir()} == {"report.html", "report.md", "metrics.json", "loss.png"}
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["unigram_bpc"] > 3.5
    assert 0 < metrics["val_bpc"] < 10
    assert len(metrics["samples"]) == len(TINY["prompts"]) * len(TINY["temperatures"])
    assert (report / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert "--date 20160501" in metrics["command"]
    assert metrics["preset"] == "luigi.cfg"
    assert metrics["residues"]["[["] == 0


def test_second_build_runs_nothing(built):
    data_root, _, _ = built
    before = _outputs(data_root)
    result = _build(data_root)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert STARTED == []
    assert _outputs(data_root) == before


def test_changed_setting_reruns_only_later_stages(tmp_path, built):
    data_root, _, _ = built
    copy = tmp_path / "data"
    shutil.copytree(data_root, copy)
    result = _build(copy, coverage=0.999)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert set(STARTED) == {"BuildVocabulary", "EncodeTokens", "TrainModel", "WriteReport", "TrainWikiModel"}
    assert len(list((copy / "enwiki" / "20160501" / "vocabulary").iterdir())) == 2


def test_deleted_stage_reruns_with_later_stages(tmp_path, built):
    data_root, _, _ = built
    copy = tmp_path / "data"
    shutil.copytree(data_root, copy)
    shutil.rmtree(_one(copy / "enwiki" / "20160501" / "shards", "val*"))
    result = _build(copy)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert set(STARTED) == {"WriteShards", "BuildVocabulary", "EncodeTokens", "TrainModel", "WriteReport", "TrainWikiModel"}


def _luigi_command(data_root: Path, **overrides) -> list[str]:
    words = [sys.executable, "-m", "luigi", "--module", "tasks", "TrainWikiModel", "--local-scheduler",
             "--data-root", str(data_root), "--mirror", str(MIRROR)]
    for name, value in {**TINY, **overrides}.items():
        words += [f"--{name.replace('_', '-')}", json.dumps(value) if isinstance(value, list) else str(value)]
    return words


def test_killed_training_resumes_to_same_model(tmp_path):
    overrides = {"max_steps": 400, "checkpoint_interval": 20, "eval_interval": 100}
    killed_root = tmp_path / "killed"
    process = subprocess.Popen(_luigi_command(killed_root, **overrides), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list(killed_root.glob("enwiki/20160501/model/.*.work/checkpoint.pt")):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint within 90 s"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not list(killed_root.glob("enwiki/20160501/model/lstm-*")), "the model must not look complete"

    rerun = subprocess.run(_luigi_command(killed_root, **overrides), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Resuming from" in rerun.stderr
    resumed = torch.load(_one(killed_root / "enwiki/20160501/model", "lstm-*") / "model.pt", weights_only=True)
    assert resumed["step"] == 400

    straight_root = tmp_path / "straight"
    straight = subprocess.run(_luigi_command(straight_root, **overrides), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]
    uninterrupted = torch.load(_one(straight_root / "enwiki/20160501/model", "lstm-*") / "model.pt", weights_only=True)
    for name, weight in uninterrupted["model"].items():
        assert torch.equal(weight, resumed["model"][name]), name


def test_failed_run_exits_nonzero(tmp_path):
    missing = tmp_path / "no-mirror"
    command = _luigi_command(tmp_path / "data")
    command[command.index(str(MIRROR))] = str(missing)
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Wiki folder not found on the mirror" in result.stderr


def test_training_with_torchrun_processes(tmp_path, built, capfd):
    data_root, _, _ = built
    copy = tmp_path / "data"
    shutil.copytree(data_root, copy)
    result = _build(copy, nproc_per_node=2)
    # NOTE: gloo has aborted a rank of a 2-process CPU run, rarely and for an unknown cause (see
    # test_train._run_distributed). A second build resumes from the checkpoint, as a user would.
    if result.status != luigi.execution_summary.LuigiStatusCode.SUCCESS and "Signal 6 (SIGABRT)" in capfd.readouterr().err:
        result = _build(copy, nproc_per_node=2)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    assert set(STARTED) == {"TrainModel", "WriteReport", "TrainWikiModel"}

    models = sorted((copy / "enwiki" / "20160501" / "model").glob("lstm-*"))
    assert len(models) == 2, "the process count changes the model, so it gets its own folder"
    training = [json.loads((model / "training.json").read_text()) for model in models]
    assert sorted(summary["processes"] for summary in training) == [1, 2]
    distributed = next(model for model, summary in zip(models, training) if summary["processes"] == 2)
    checkpoint = torch.load(distributed / "model.pt", weights_only=True)
    assert checkpoint["world_size"] == 2
    assert checkpoint["step"] == TINY["max_steps"]


def test_sigterm_stops_training_with_a_checkpoint(tmp_path):
    overrides = {"max_steps": 2000, "checkpoint_interval": 1000, "eval_interval": 1000}
    root = tmp_path / "data"
    status, log_text = terminate_once_training(_luigi_command(root, **overrides))
    # Luigi's task_failed code from luigi.cfg.
    assert status == 30, log_text[-3000:]
    assert "Stopped by SIGTERM at step" in log_text
    checkpoint = torch.load(_one(root / "enwiki/20160501/model", ".lstm-*.work") / "checkpoint.pt", weights_only=True)
    assert 50 <= checkpoint["step"] < 1000
