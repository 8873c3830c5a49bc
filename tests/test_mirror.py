"""A mirror with several dated runs, split parts, content exports and injected faults, through the pipeline.

The server (conftest.dump_mirror) listens on 127.0.0.1 and serves the tree
that tests/mirror_tree.py builds from the bundled dump. Whatever the run's
shape and the faults on the way, the pipeline must pick the right run, end
with verified files, and extract exactly the articles that the bundled
single-file dump gives.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from pipeline import extract
from pipeline.dump import (CONTENT_EXPORT, DumpError, DumpNotReady, Mirror, RetryPolicy, content_export_files,
                           download_file, dump_order, multistream_files, resolve_latest_date, run_files)
from tasks.main import TrainWikiModel
from tasks.shards import WriteShards

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP, BUNDLED_SKIPPED
from mirror_tree import CONTENT_DATE, CONTENT_ROOT, SPLIT_DATE, UNAVAILABLE_DATE, WIKI

pytestmark = pytest.mark.slow

FAST_RETRY = RetryPolicy(attempts=4, backoff_seconds=0.01)


@pytest.fixture(scope="module")
def reference_articles() -> list[tuple]:
    """The articles of the bundled single-file dump, extracted directly."""
    templates = extract.collect_templates([BUNDLED_DUMP])
    articles = extract.iter_articles([BUNDLED_DUMP], extract.ExtractionStats(),
                                     default_site_base="https://en.wikipedia.org/wiki/", templates=templates)
    return [(a.page_id, a.revision_id, a.title, a.url, a.text) for a in articles]


@pytest.fixture(autouse=True)
def fast_retries():
    config = luigi.configuration.get_config()
    shipped = config.get("DownloadDumpFile", "backoff_seconds", None)
    config.set("DownloadDumpFile", "backoff_seconds", "0.01")
    yield
    if shipped is None:
        config.remove_option("DownloadDumpFile", "backoff_seconds")
    else:
        config.set("DownloadDumpFile", "backoff_seconds", shipped)


def _build_shards(data_root: Path, base: str, **parameters) -> luigi.execution_summary.LuigiRunResult:
    luigi.task_register.Register.clear_instance_cache()
    task = WriteShards(lang="en", data_root=str(data_root), mirror=base, max_shard_mb=1.0, processes=1, **parameters)
    return luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING", workers=2)


def _extracted(data_root: Path, date: str) -> tuple[dict, list[tuple]]:
    """Return the text stage's stats.json and its articles, reading the parts in their listed order."""
    text = next((data_root / WIKI / date / "text").glob("policy*"))
    stats = json.loads((text / "stats.json").read_text())
    rows = []
    for part in stats["parts"]:
        table = pq.read_table(text / part["file"], columns=["page_id", "revision_id", "title", "url", "text"])
        rows.extend(tuple(row.values()) for row in table.to_pylist())
    return stats, rows


def _assert_verified(data_root: Path, date: str, source: str, mirror_folder: Path) -> list[dict]:
    """Every file in files.json is in the data root with the checksum that the run published."""
    dump = data_root / WIKI / date / "dump" / source
    listing = json.loads((dump / "files.json").read_text())
    for entry in listing["files"]:
        algorithm = "sha256" if entry["sha256"] else "sha1"
        assert hashlib.new(algorithm, (dump / entry["name"]).read_bytes()).hexdigest() == entry[algorithm]
    assert not list(dump.glob("*.part*")), "no partial files may remain"
    return listing["files"]


def test_latest_skips_unfinished_failed_and_unavailable_runs(dump_mirror, caplog):
    base, _, _ = dump_mirror
    with caplog.at_level(logging.INFO, logger="pipeline.dump"):
        assert resolve_latest_date(Mirror(base), WIKI) == SPLIT_DATE
    skipped = {record.args[1]: record.args[2] for record in caplog.records if record.msg.startswith("Skipping dump")}
    assert "404" in str(skipped["20160901"])
    assert "503" in str(skipped[UNAVAILABLE_DATE])
    assert "'in-progress', not 'done'" in str(skipped["20160701"])
    assert "'failed', not 'done'" in str(skipped["20160601"])


def test_latest_content_export_needs_success_marker(dump_mirror, caplog):
    base, _, _ = dump_mirror
    with caplog.at_level(logging.INFO, logger="pipeline.dump"):
        assert resolve_latest_date(Mirror(base), WIKI, CONTENT_EXPORT) == CONTENT_DATE
    assert any("20160601" in record.getMessage() and "_SUCCESS" in record.getMessage() for record in caplog.records)


def test_main_task_resolves_split_run(dump_mirror):
    base, _, _ = dump_mirror
    assert TrainWikiModel(lang="en", mirror=base).resolved_date() == SPLIT_DATE


def test_main_task_resolves_content_export(dump_mirror):
    base, _, _ = dump_mirror
    assert TrainWikiModel(lang="en", mirror=base, source=CONTENT_EXPORT).resolved_date() == CONTENT_DATE


def test_stage_task_needs_concrete_date(tmp_path):
    with pytest.raises(ValueError, match="WriteShards needs a concrete --date YYYYMMDD"):
        WriteShards(lang="en", date="latest", data_root=str(tmp_path)).output()


@pytest.mark.parametrize("base", ["htp://127.0.0.1:8000", "ftp://mirror.example/dumps"])
def test_unsupported_mirror_scheme_is_named(base):
    with pytest.raises(ValueError, match="Invalid mirror .* the scheme .* is not supported"):
        Mirror(base)


def test_split_run_with_faults_gives_the_same_articles(dump_mirror, tmp_path, reference_articles):
    base, folder, handler = dump_mirror
    files = multistream_files(json.loads((folder / WIKI / SPLIT_DATE / "dumpstatus.json").read_text()), WIKI, SPLIT_DATE)
    dumps = [f.name for f in files if not f.is_index]
    indexes = [f.name for f in files if f.is_index]
    handler.file_faults = {
        dumps[0]: ["drop"],             # a connection cut mid-file: resumed with Range
        dumps[1]: ["503", "503"],       # 503 twice, then success
        dumps[2]: ["drop-change"],      # cut, and the file changes before the retry: fetched whole again
        indexes[0]: ["drop", "drop"],
    }
    result = _build_shards(tmp_path / "data", base, date=SPLIT_DATE)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text

    listed = _assert_verified(tmp_path / "data", SPLIT_DATE, "multistream", folder)
    assert [entry["name"] for entry in listed] == [f.name for f in files]
    requests = {name: [entry for entry in handler.log if entry[0].endswith(name)] for name in (dumps[0], dumps[2])}
    assert [entry[3] for entry in requests[dumps[0]]] == [200, 206]
    assert [entry[3] for entry in requests[dumps[2]]] == [200, 200]

    stats, rows = _extracted(tmp_path / "data", SPLIT_DATE)
    assert [part["dump_file"] for part in stats["parts"]] == dumps
    assert sum(part["articles"] for part in stats["parts"]) == stats["articles"] == BUNDLED_ARTICLES
    assert stats["skipped"] == BUNDLED_SKIPPED
    assert rows == reference_articles


def test_content_export_gives_the_same_articles(dump_mirror, tmp_path, reference_articles):
    base, folder, handler = dump_mirror
    export = content_export_files(Mirror(base), WIKI, CONTENT_DATE)
    handler.file_faults = {export[0].name: ["drop"]}
    result = _build_shards(tmp_path / "data", base, date=CONTENT_DATE, source=CONTENT_EXPORT)
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text

    listed = _assert_verified(tmp_path / "data", CONTENT_DATE, CONTENT_EXPORT, folder)
    assert [entry["name"] for entry in listed] == [f.name for f in export]
    assert all(entry["size"] > 0 and not entry["index"] for entry in listed)
    # The size is not published, so the resumed request learns it from Content-Range.
    assert [entry[3] for entry in handler.log if entry[0].endswith(export[0].name)] == [200, 206]

    stats, rows = _extracted(tmp_path / "data", CONTENT_DATE)
    assert len(stats["parts"]) == 2
    assert stats["skipped"] == BUNDLED_SKIPPED
    assert rows == reference_articles


def test_corrupt_download_fails_then_succeeds(dump_mirror, tmp_path):
    base, folder, handler = dump_mirror
    files = multistream_files(json.loads((folder / WIKI / SPLIT_DATE / "dumpstatus.json").read_text()), WIKI, SPLIT_DATE)
    handler.file_faults = {files[0].name: ["corrupt"]}
    first = _build_shards(tmp_path / "data", base, date=SPLIT_DATE)
    assert first.status == luigi.execution_summary.LuigiStatusCode.FAILED
    dump = tmp_path / "data" / WIKI / SPLIT_DATE / "dump" / "multistream"
    assert not (dump / files[0].name).exists()
    assert not list(dump.glob(files[0].name + ".part*"))

    second = _build_shards(tmp_path / "data", base, date=SPLIT_DATE)
    assert second.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, second.summary_text
    _assert_verified(tmp_path / "data", SPLIT_DATE, "multistream", folder)


def test_content_export_resumes_without_published_size(dump_mirror, tmp_path):
    base, folder, handler = dump_mirror
    dump_file = content_export_files(Mirror(base), WIKI, CONTENT_DATE)[1]
    source = folder / CONTENT_ROOT / "2016-05-01" / "xml" / "bzip2" / dump_file.name
    destination = tmp_path / dump_file.name

    # A partial copy that is already whole: the server responds 416 with the size, and nothing more is fetched.
    handler.file_faults = {dump_file.name: ["drop"]}
    with pytest.raises(DumpError):
        download_file(Mirror(base), dump_file, destination, retry=RetryPolicy(attempts=1))
    partial = destination.with_name(destination.name + ".part")
    partial.write_bytes(source.read_bytes())
    download_file(Mirror(base), dump_file, destination, retry=FAST_RETRY)
    assert destination.read_bytes() == source.read_bytes()
    assert handler.log[-1][3] == 416


@pytest.mark.parametrize("line", [
    "{digest}  ../enwiki-2016-05-01-p1p2.xml.bz2",
    "{digest}  sub/enwiki-2016-05-01-p1p2.xml.bz2",
    "{digest}  dewiki-2016-05-01-p1p2.xml.bz2",
    "{digest}  enwiki-2016-05-02-p1p2.xml.bz2",
    "{digest}  enwiki-2016-05-01-all.xml.bz2",
])
def test_content_export_rejects_unexpected_names(dump_mirror, line):
    base, folder, _ = dump_mirror
    sums = folder / CONTENT_ROOT / "2016-05-01" / "xml" / "bzip2" / "SHA256SUMS"
    sums.write_text(sums.read_text() + line.format(digest="a" * 64) + "\n")
    with pytest.raises(DumpError, match="unexpected file name"):
        content_export_files(Mirror(base), WIKI, CONTENT_DATE)


def test_content_export_ignores_other_listed_files(dump_mirror):
    base, folder, _ = dump_mirror
    sums = folder / CONTENT_ROOT / "2016-05-01" / "xml" / "bzip2" / "SHA256SUMS"
    sums.write_text(sums.read_text() + f"{'b' * 64}  README.txt\n")
    assert len(run_files(Mirror(base), WIKI, CONTENT_DATE, CONTENT_EXPORT)) == 2


@pytest.mark.parametrize("line", ["not a checksum line", f"{'a' * 63}  enwiki-2016-05-01-p1p2.xml.bz2"])
def test_content_export_rejects_malformed_sums(dump_mirror, line):
    base, folder, _ = dump_mirror
    sums = folder / CONTENT_ROOT / "2016-05-01" / "xml" / "bzip2" / "SHA256SUMS"
    sums.write_text(line + "\n")
    with pytest.raises(DumpError, match="SHA256SUMS, line 1"):
        content_export_files(Mirror(base), WIKI, CONTENT_DATE)


def test_multistream_file_without_its_index_is_not_ready(dump_mirror):
    _, folder, _ = dump_mirror
    status = json.loads((folder / WIKI / SPLIT_DATE / "dumpstatus.json").read_text())
    files = status["jobs"]["articlesmultistreamdump"]["files"]
    index = next(name for name in files if "-index2.txt" in name)
    del files[index]
    with pytest.raises(DumpNotReady, match="no index for .*multistream2"):
        multistream_files(status, WIKI, SPLIT_DATE)


@pytest.mark.parametrize("names, expected", [
    (["x-multistream10.xml-p9p10.bz2", "x-multistream2.xml-p3p4.bz2", "x-multistream1.xml-p1p2.bz2"],
     ["x-multistream1.xml-p1p2.bz2", "x-multistream2.xml-p3p4.bz2", "x-multistream10.xml-p9p10.bz2"]),
    (["x-multistream4.xml-p2601p3600.bz2", "x-multistream4.xml-p1601p2600.bz2", "x-multistream4.xml-p3601p4450.bz2"],
     ["x-multistream4.xml-p1601p2600.bz2", "x-multistream4.xml-p2601p3600.bz2", "x-multistream4.xml-p3601p4450.bz2"]),
    (["enwiki-2026-03-01-p1147432p2000000.xml.bz2", "enwiki-2026-03-01-p10p1147431.xml.bz2",
      "enwiki-2026-03-01-p5p9.xml.bz2"],
     ["enwiki-2026-03-01-p5p9.xml.bz2", "enwiki-2026-03-01-p10p1147431.xml.bz2",
      "enwiki-2026-03-01-p1147432p2000000.xml.bz2"]),
])
def test_dump_order(names, expected):
    assert sorted(names, key=dump_order) == expected


def test_overlapping_parts_fail_naming_both(tmp_path):
    from pipeline.articles import ArticleWriter

    articles = list(extract.iter_articles([BUNDLED_DUMP], extract.ExtractionStats(),
                                          default_site_base="https://en.wikipedia.org/wiki/"))
    for name, part in (("a.parquet", articles[:60]), ("b.parquet", articles[50:])):
        with ArticleWriter(tmp_path / name) as writer:
            for article in part:
                writer.write(article)
    with pytest.raises(extract.ExtractionError, match=f"Page id {articles[50].page_id} is in both a.parquet and b.parquet"):
        extract.check_disjoint([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    extract.check_disjoint([tmp_path / "a.parquet"])
