"""A data root on object storage: an S3-compatible server (moto) and a Google Cloud Storage emulator,
both started by the tests on 127.0.0.1.

The whole pipeline runs with `data_root = s3://builds/wikichar` (and
gs://builds/wikichar), and workers are killed with SIGKILL while they upload.
Each run gets its own cache folder, as a separate machine would have, unless
the test states otherwise.
"""

from __future__ import annotations

import bz2
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pyarrow.dataset
import pyarrow.fs
import pytest

from pipeline.data_root import MULTIPART_THRESHOLD, SUCCESS_MARKER, DataRoot, StorageError
from pipeline.dataset import find_shards, iter_articles
from tasks.dump import DownloadDump
from tasks.main import TrainWikiModel
from tasks.rebuild import BUILT, UP_TO_DATE, apply_retention, complete_builds
from tasks.report import WriteReport
from tasks.shards import WriteShards
from tasks.text import ExtractText
from tasks.train import TrainModel

from buckets import Bucket
from conftest import BUNDLED_ARTICLES, MIRROR, REPO, TINY, terminate_once_training

BUCKET = "builds"
DATE = "20160501"
WIKI = "enwiki"


@pytest.fixture(params=["s3", "gs"])
def bucket(request) -> Bucket:
    """An empty bucket in an S3-compatible store or a Google Cloud Storage emulator, both on 127.0.0.1."""
    request.getfixturevalue("s3_environment" if request.param == "s3" else "gcs_environment")
    created = Bucket(request.param, BUCKET)
    yield created
    created.remove()


@pytest.fixture
def s3_bucket(s3_environment) -> Bucket:
    """The bucket in the S3-compatible store, whose KillSwitch can kill a worker mid-upload."""
    created = Bucket("s3", BUCKET)
    yield created
    created.remove()


def test_stored_shards_read_as_dataset(bucket, tmp_path):
    task = WriteShards(lang="en", date=DATE, data_root=bucket.root, mirror=str(MIRROR), processes=1, max_shard_mb=1.0,
                       cache_root=str(tmp_path / "builder"))
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text

    found = find_shards(bucket.root, "en", cache_root=str(tmp_path / "reader"))
    assert found == DataRoot(bucket.root, tmp_path / "reader").local / task.output_dir().relative_to(task.data.local)
    assert (found / "_manifest.json").is_file()
    folder_uri = task.data.location(task.output_dir())
    rows = [row for split in ("train", "validation", "test") for row in iter_articles(folder_uri, split, ["page_id"])]
    assert len(rows) == BUNDLED_ARTICLES
    with pytest.raises(FileNotFoundError, match=f"No complete shards found in {bucket.root}/dewiki"):
        find_shards(bucket.root, "de", cache_root=str(tmp_path / "reader"))

    exported = subprocess.run([sys.executable, "-m", "pipeline.dataset", "export", folder_uri, "--split", "test"],
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert len(exported.stdout.splitlines()) == sum(1 for _ in iter_articles(found, "test", ["page_id"]))
    missing = subprocess.run([sys.executable, "-m", "pipeline.dataset", "export", f"{bucket.root}/no/such/folder"],
                             cwd=REPO, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert missing.returncode == 2
    assert f"Missing {bucket.root}/no/such/folder/_SUCCESS" in missing.stderr


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)


def test_folder_round_trip_through_store(bucket, tmp_path):
    writer = DataRoot(bucket.root, tmp_path / "machine-a")
    folder = writer.local / WIKI / DATE / "shards" / "val-abc"
    compressed = bz2.compress(b"<mediawiki/>" * 100)
    _write_folder(folder, {"train-00000-of-00001.parquet": b"PAR1 train", "_manifest.json": b"{}",
                           "nested/dump.xml.bz2": compressed})
    # Leftovers of a killed attempt: one object the new output does not have.
    prefix = f"wikichar/{WIKI}/{DATE}/shards/val-abc/"
    bucket.put(prefix + "train-00000-of-00002.parquet", b"x")
    assert not writer.folder_complete(folder)

    writer.publish_folder(folder)

    assert bucket.keys(prefix) == [prefix + name for name in
                                   ["_SUCCESS", "_manifest.json", "nested/dump.xml.bz2", "train-00000-of-00001.parquet"]]
    # smart_open must not recompress a .bz2 file by its name.
    assert bucket.get(prefix + "nested/dump.xml.bz2") == compressed
    reader = DataRoot(bucket.root, tmp_path / "machine-b")
    reader_folder = reader.local / WIKI / DATE / "shards" / "val-abc"
    assert reader.folder_complete(reader_folder)
    reader.fetch_folder(reader_folder)
    assert (reader_folder / "nested" / "dump.xml.bz2").read_bytes() == compressed
    assert (reader_folder / "train-00000-of-00001.parquet").read_bytes() == b"PAR1 train"


def test_large_file_goes_up_in_parts(s3_bucket, tmp_path):
    writer = DataRoot(s3_bucket.root, tmp_path / "machine-a")
    path = writer.local / WIKI / DATE / "dump" / "multistream" / "big.xml.bz2"
    path.parent.mkdir(parents=True)
    content = os.urandom(MULTIPART_THRESHOLD + 1)
    path.write_bytes(content)
    writer.publish(path)

    key = f"wikichar/{WIKI}/{DATE}/dump/multistream/big.xml.bz2"
    # S3 gives a multipart object an ETag with the number of parts after a dash.
    assert s3_bucket.client.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"').endswith("-2")
    reader = DataRoot(s3_bucket.root, tmp_path / "machine-b")
    reader.fetch(reader.local / path.relative_to(writer.local))
    assert (reader.local / path.relative_to(writer.local)).read_bytes() == content


def test_fetch_rejects_corrupt_object(bucket, tmp_path):
    writer = DataRoot(bucket.root, tmp_path / "machine-a")
    folder = writer.local / WIKI / DATE / "model" / "lstm"
    _write_folder(folder, {"model.pt": b"weights"})
    writer.publish_folder(folder)
    bucket.put(f"wikichar/{WIKI}/{DATE}/model/lstm/model.pt", b"WEIGHTS")

    reader = DataRoot(bucket.root, tmp_path / "machine-b")
    with pytest.raises(StorageError, match=f"Corrupt download of {bucket.root}/enwiki/20160501/model/lstm/model.pt"):
        reader.fetch_folder(reader.local / WIKI / DATE / "model" / "lstm")
    assert not (reader.local / WIKI / DATE / "model" / "lstm" / "model.pt").exists()


def test_fetch_missing_object_names_it(bucket, tmp_path):
    data = DataRoot(bucket.root, tmp_path)
    with pytest.raises(StorageError, match=f"Missing {bucket.root}/enwiki/x.json"):
        data.fetch(data.local / WIKI / "x.json")


def test_glob_matches_whole_components(bucket, tmp_path):
    for key in [f"{WIKI}/20160501/dump/multistream/files.json", f"{WIKI}/20160601/dump/multistream/files.json",
                f"{WIKI}/20160601/dump/multistream/old/files.json", "dewiki/20160501/dump/multistream/files.json"]:
        bucket.put(f"wikichar/{key}", b"{}")
    data = DataRoot(bucket.root, tmp_path)
    found = data.glob(f"{WIKI}/*/dump/multistream/files.json")
    assert [path.relative_to(data.local).as_posix() for path in found] == [
        f"{WIKI}/20160501/dump/multistream/files.json", f"{WIKI}/20160601/dump/multistream/files.json"]
    with pytest.raises(ValueError, match="first component must be literal"):
        data.glob("*/20160501/files.json")


def test_changed_file_is_uploaded_while_block_runs(bucket, tmp_path):
    data = DataRoot(bucket.root, tmp_path)
    checkpoint = data.local / WIKI / DATE / "model" / ".lstm.work" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    key = f"wikichar/{WIKI}/{DATE}/model/.lstm.work/checkpoint.pt"
    with pytest.raises(RuntimeError, match="training failed"):
        with data.uploading_changes(checkpoint, interval=0.05):
            checkpoint.write_bytes(b"step 1")
            deadline = time.monotonic() + 30
            while bucket.keys(key) == []:
                assert time.monotonic() < deadline, "the checkpoint was not uploaded within 30 s"
                time.sleep(0.05)
            checkpoint.write_bytes(b"step 2, a failed run")
            raise RuntimeError("training failed")
    # The block raised, so the last version was uploaded before the error went on.
    assert bucket.get(key) == b"step 2, a failed run"


def test_missing_bucket_fails_before_any_work(bucket, tmp_path):
    root = f"{bucket.scheme}://no-such-bucket/wikichar"
    task = DownloadDump(lang="en", date=DATE, data_root=root, mirror=str(MIRROR), cache_root=str(tmp_path))
    with pytest.raises(StorageError, match=f"{bucket.scheme}://no-such-bucket"):
        task.data.store.check_bucket()
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.FAILED, result.summary_text
    assert not list(tmp_path.rglob("*.bz2")), "a dump file was downloaded for a bucket that does not exist"


@pytest.mark.parametrize("root, message", [
    ("s3:///wikichar", "expected s3://BUCKET/PREFIX"),
    ("ftp://host/data", "expected a local folder or an s3:// or gs:// URI"),
    ("s3:/wikichar/data", "expected s3://BUCKET/PREFIX"),
    ("s3//wikichar/data", "expected s3://BUCKET/PREFIX. For a local folder, write ./s3//wikichar/data"),
    ("GS//wikichar", "expected gs://BUCKET/PREFIX"),
])
def test_invalid_data_root_is_rejected(root, message):
    with pytest.raises(StorageError, match=message):
        DataRoot(root)


@pytest.mark.parametrize("command, status", [
    (["-m", "tasks.rebuild", "--lang", "en", "--local-scheduler"], 1),
    (["-m", "tasks", "report-path", "--lang", "en"], 1),
    # Luigi's unhandled_exception code from luigi.cfg: the task cannot even be created.
    (["-m", "luigi", "--module", "tasks", "TrainWikiModel", "--lang", "en", "--local-scheduler"], 40),
])
def test_mistyped_root_fails_at_once(tmp_path, command, status):
    config = _config(tmp_path / "typo.cfg", "data")
    result = subprocess.run([sys.executable, *command, "--data-root", "s3//builds/wikichar"], cwd=REPO,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})
    assert result.returncode == status, result.stderr[-3000:]
    assert "Invalid data_root 's3//builds/wikichar'" in result.stderr
    assert not (REPO / "s3").exists()


@pytest.mark.parametrize("command", [
    ["-m", "tasks.rebuild", "--lang", "en", "--local-scheduler"],
    ["-m", "tasks", "report-path", "--lang", "en"],
])
def test_missing_bucket_named_by_commands(s3_environment, tmp_path, command):
    config = _config(tmp_path / "missing.cfg", "s3://no-such-bucket/wikichar")
    result = subprocess.run([sys.executable, *command, "--cache-root", str(tmp_path / "cache")], cwd=REPO,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Cannot use the bucket s3://no-such-bucket" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("dates, keep, deleted", [
    ({"20160101": True, "20160201": True, "20160301": True}, 2, ["20160101"]),
    ({"20160101": True, "20160201": False, "20160301": True, "20160401": False}, 1, ["20160101", "20160201"]),
    ({"20160101": False, "20160201": True}, 3, []),
])
def test_retention_on_object_storage(bucket, tmp_path, dates, keep, deleted):
    for date, complete in dates.items():
        folder = f"wikichar/{WIKI}/{date}/report/report-abc"
        bucket.put(f"{folder}/report.html", b"<html></html>")
        if complete:
            bucket.put(f"{folder}/{SUCCESS_MARKER}", b"{}")
    data = DataRoot(bucket.root, tmp_path)
    assert complete_builds(data, WIKI) == sorted((date for date, complete in dates.items() if complete), reverse=True)
    assert apply_retention(data, WIKI, keep) == deleted
    remaining = {key.split("/")[2] for key in bucket.keys()}
    assert remaining == set(dates) - set(deleted)


def _config(path: Path, root: str) -> Path:
    lines = ["[TrainWikiModel]", f"mirror = {MIRROR}", f"data_root = {root}", f"date = {DATE}", "processes = 1"]
    for name, value in TINY.items():
        if name != "lang":
            lines.append(f"{name} = {json.dumps(value) if isinstance(value, list) else value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _report_task(data_root: str, cache_root: Path) -> WriteReport:
    """Return the report task that the test config builds, seen from a machine with `cache_root`."""
    return WriteReport(date=DATE, data_root=data_root, mirror=str(MIRROR), processes=1, cache_root=str(cache_root),
                       **TINY)


def _main_task(data_root: str, cache_root: Path) -> TrainWikiModel:
    return TrainWikiModel(date=DATE, data_root=data_root, mirror=str(MIRROR), processes=1, cache_root=str(cache_root),
                          **TINY)


def _build_killed_at(switch, config: Path, cache_root: Path, pattern: str) -> None:
    """Run the whole build in a subprocess and SIGKILL it when it starts uploading a key that matches `pattern`."""
    command = [sys.executable, "-m", "luigi", "--module", "tasks", "TrainWikiModel", "--lang", "en", "--local-scheduler",
               "--cache-root", str(cache_root)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})
    switch.arm(process.pid, pattern)
    _, stderr = process.communicate(timeout=600)
    assert switch.fired.is_set(), f"the build never uploaded {pattern}; its log ends:\n{stderr[-3000:]}"
    assert process.returncode == -9, stderr[-3000:]


def _rebuild(config: Path, cache_root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.rebuild", "--lang", "en", "--local-scheduler", "--cache-root",
                           str(cache_root)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})


def _check_folders_match_markers(bucket: Bucket) -> int:
    """Check that every output folder with a _SUCCESS marker contains exactly the files it lists; return how many."""
    keys = bucket.keys()
    markers = [key for key in keys if key.endswith(f"/{SUCCESS_MARKER}")]
    for marker in markers:
        folder = marker[: -len(SUCCESS_MARKER)]
        listed = json.loads(bucket.get(marker))["files"]
        stored = {key[len(folder):]: len(bucket.get(key)) for key in keys if key.startswith(folder) and key != marker}
        assert stored == {entry["name"]: entry["size"] for entry in listed}, folder
    return len(markers)


def _check_same_as_local_build(data_root: str, tmp_path: Path) -> None:
    """Build the same settings on a local data root and compare the stored build's metrics and shards with it."""
    local = _report_task(str(tmp_path / "local"), tmp_path / "unused")
    result = luigi.build([local], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    stored = _report_task(data_root, tmp_path / "checker")
    stored.data.fetch_folder(stored.output_dir())
    stored_metrics = json.loads((stored.output_dir() / "metrics.json").read_text())
    local_metrics = json.loads((local.output_dir() / "metrics.json").read_text())
    assert sum(stored_metrics["articles"].values()) == BUNDLED_ARTICLES
    for name in ("articles", "characters", "vocabulary_size", "steps", "val_bpc", "train_bpc", "dump_files"):
        assert stored_metrics[name] == local_metrics[name], name
    stored_shards = stored.clone(WriteShards)
    stored.data.fetch_folder(stored_shards.output_dir())
    stored_manifest = json.loads((stored_shards.output_dir() / "_manifest.json").read_text())
    local_manifest = json.loads((local.clone(WriteShards).output_dir() / "_manifest.json").read_text())
    assert stored_manifest["shards"] == local_manifest["shards"]


@pytest.mark.slow
def test_killed_uploads_never_count_as_done(s3_bucket, s3_environment, tmp_path, caplog):
    switch = s3_environment
    root = s3_bucket.root
    config = _config(tmp_path / "s3.cfg", root)

    # A machine dies while uploading the first dump file: the object never appears, so nothing is done.
    _build_killed_at(switch, config, tmp_path / "machine-a", rf"/{BUCKET}/wikichar/{WIKI}/{DATE}/dump/multistream/")
    assert s3_bucket.keys() == []
    assert not _report_task(root, tmp_path / "machine-a").clone(DownloadDump).complete()

    # Another machine dies after uploading the shards, before their _SUCCESS marker: the shards do not count.
    _build_killed_at(switch, config, tmp_path / "machine-b", r"/shards/[^/]+/_SUCCESS$")
    shards = _report_task(root, tmp_path / "machine-b").clone(WriteShards)
    shard_prefix = shards.data.key(shards.output_dir()) + "/"
    assert [key for key in s3_bucket.keys(shard_prefix) if key.endswith(".parquet")], "no shard was uploaded"
    assert not shards.complete()
    assert shards.clone(ExtractText).complete()
    assert not _main_task(root, tmp_path / "machine-b").complete()

    # The same machine, run again, uploads the shards it had built instead of writing them again.
    with caplog.at_level(logging.INFO, logger="tasks"):
        result = luigi.build([shards], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    assert "from the local cache, where an earlier attempt built it" in caplog.text
    assert shards.complete()

    # Once uploaded, the cached copy no longer replaces the stored output, so deleting that output rebuilds it.
    s3_bucket.client.delete_object(Bucket=BUCKET, Key=shard_prefix + SUCCESS_MARKER)
    caplog.clear()
    luigi.task_register.Register.clear_instance_cache()
    with caplog.at_level(logging.INFO, logger="tasks"):
        result = luigi.build([shards], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    assert "from the local cache" not in caplog.text
    assert "Stage shards finished" in caplog.text
    assert shards.complete()

    # A third machine, with an empty cache, finishes the build from the stored outputs.
    built = _rebuild(config, tmp_path / "machine-c")
    assert built.returncode == BUILT, built.stderr[-3000:]
    assert _check_folders_match_markers(s3_bucket) == 4  # shards, tokens, model, report
    _check_same_as_local_build(root, tmp_path)

    # The shards are a dataset that pyarrow reads from the bucket; it skips _SUCCESS and _manifest.json.
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    filesystem = pyarrow.fs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key="test",
                                         secret_key="test", region="us-east-1")
    table = pyarrow.dataset.dataset(f"{BUCKET}/{shard_prefix}", filesystem=filesystem, format="parquet").to_table()
    assert table.num_rows == BUNDLED_ARTICLES

    # Run again from yet another machine: up to date, nothing built.
    again = _rebuild(config, tmp_path / "machine-d")
    assert again.returncode == UP_TO_DATE, again.stderr[-3000:]

    # report-path finds the report in the bucket given --data-root, whatever the configured data root.
    elsewhere = tmp_path / "elsewhere.cfg"
    elsewhere.write_text(config.read_text().replace(f"data_root = {root}", f"data_root = {tmp_path / 'local-root'}"))
    located = subprocess.run([sys.executable, "-m", "tasks", "report-path", "--lang", "en", "--data-root", root,
                              "--cache-root", str(tmp_path / "machine-d")], cwd=REPO, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "LUIGI_CONFIG_PATH": str(elsewhere)})
    assert located.returncode == 0, located.stderr[-3000:]
    assert located.stdout.strip().startswith(f"{root}/{WIKI}/{DATE}/report/")
    assert located.stdout.strip().endswith("/report.html")


@pytest.mark.slow
def test_whole_build_on_gcs(gcs_environment, tmp_path):
    bucket = Bucket("gs", BUCKET)
    try:
        built = _rebuild(_config(tmp_path / "gcs.cfg", bucket.root), tmp_path / "machine-a")
        assert built.returncode == BUILT, built.stderr[-3000:]
        assert _check_folders_match_markers(bucket) == 4
        _check_same_as_local_build(bucket.root, tmp_path)
    finally:
        bucket.remove()


def _luigi_command(data_root: str, cache_root: Path, **overrides) -> list[str]:
    words = [sys.executable, "-m", "luigi", "--module", "tasks", "TrainWikiModel", "--local-scheduler",
             "--data-root", data_root, "--cache-root", str(cache_root), "--mirror", str(MIRROR), "--date", DATE]
    for name, value in {**TINY, **overrides}.items():
        words += [f"--{name.replace('_', '-')}", json.dumps(value) if isinstance(value, list) else str(value)]
    return words


@pytest.mark.slow
def test_training_resumes_on_another_machine(s3_bucket, tmp_path):
    overrides = {"max_steps": 600, "checkpoint_interval": 300, "eval_interval": 300}
    root = s3_bucket.root
    status, log_text = terminate_once_training(_luigi_command(root, tmp_path / "machine-a", **overrides))
    # Luigi's task_failed code from luigi.cfg.
    assert status == 30, log_text[-3000:]
    assert "Stopped by SIGTERM at step" in log_text
    [checkpoint_key] = [key for key in s3_bucket.keys() if key.endswith("/checkpoint.pt")]
    assert "/model/.lstm-" in checkpoint_key

    resumed = subprocess.run(_luigi_command(root, tmp_path / "machine-b", **overrides), cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step = int(re.search(r"Resuming from \S+ at step (\d+)", resumed.stderr).group(1))
    assert 50 <= step < 300
    # The finished model replaces the training's work folder, in the store as in the cache.
    assert not [key for key in s3_bucket.keys() if key.endswith("/checkpoint.pt")]
    task = _main_task(root, tmp_path / "machine-c").requires().clone(TrainModel, **overrides)
    task.data.fetch_folder(task.output_dir())
    assert json.loads((task.output_dir() / "training.json").read_text())["steps"] == 600
