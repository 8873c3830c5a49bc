"""Downloads over HTTP: resume with Range and If-Range, retries, and verification."""

from __future__ import annotations

import json

import pytest

from pipeline.dump import DumpError, DumpFile, Mirror, RetryPolicy, download_file, multistream_files

from conftest import BUNDLED_RUN

WIKI, DATE = "enwiki", "20160501"
NAME = "enwiki-20160501-pages-articles-multistream.xml.bz2"
FAST_RETRY = RetryPolicy(attempts=3, backoff_seconds=0.01)


def _dump_file() -> DumpFile:
    status = json.loads((BUNDLED_RUN / "dumpstatus.json").read_text())
    return next(f for f in multistream_files(status, WIKI, DATE) if f.name == NAME)


def _file_requests(handler):
    return [entry for entry in handler.log if entry[0].endswith(NAME)]


def test_dropped_connection_resumes_with_range(range_server, tmp_path):
    base, handler = range_server
    handler.faults = ["drop"]
    destination = download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)

    assert destination.read_bytes() == (BUNDLED_RUN / NAME).read_bytes()
    first, second = _file_requests(handler)
    assert first[1] is None
    assert second[1].startswith("bytes=")
    assert int(second[1][6:-1]) > 0
    assert second[2] is not None, "a resumed request must carry If-Range"
    assert second[3] == 206
    assert not (tmp_path / "out" / (NAME + ".part")).exists()


def test_resume_across_runs(range_server, tmp_path):
    base, handler = range_server
    handler.faults = ["drop", "503", "503", "503"]
    with pytest.raises(DumpError, match="after 3 attempts; last error: HTTP 503"):
        download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)
    kept = (tmp_path / "out" / (NAME + ".part")).stat().st_size
    assert 0 < kept < _dump_file().size

    download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert (tmp_path / "out" / NAME).read_bytes() == (BUNDLED_RUN / NAME).read_bytes()
    assert _file_requests(handler)[-1][1] == f"bytes={kept}-"


def test_server_ignoring_range_restarts_file(range_server, tmp_path):
    base, handler = range_server
    handler.faults = ["drop"]
    handler.ignore_range = True
    download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert (tmp_path / "out" / NAME).read_bytes() == (BUNDLED_RUN / NAME).read_bytes()
    assert [entry[3] for entry in _file_requests(handler)] == [200, 200]


def test_changed_file_is_fetched_whole(range_server, tmp_path):
    base, handler = range_server
    partial = tmp_path / "out" / (NAME + ".part")
    partial.parent.mkdir()
    partial.write_bytes(b"stale bytes of an older file")
    (tmp_path / "out" / (NAME + ".part.validator")).write_text('"old-etag"')
    download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert (tmp_path / "out" / NAME).read_bytes() == (BUNDLED_RUN / NAME).read_bytes()
    assert _file_requests(handler)[0][3] == 200


def test_transient_errors_are_retried(range_server, tmp_path):
    base, handler = range_server
    handler.faults = ["503", "503"]
    download_file(Mirror(base), _dump_file(), tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert [entry[3] for entry in _file_requests(handler)] == [503, 503, 200]


def test_not_found_fails_at_once(range_server, tmp_path):
    base, handler = range_server
    missing = DumpFile(name="enwiki-20160501-pages-articles-multistream-x.xml.bz2", size=10, sha1="0" * 40, folder=(WIKI, DATE))
    with pytest.raises(DumpError, match="HTTP 404"):
        download_file(Mirror(base), missing, tmp_path / "out" / missing.name, retry=FAST_RETRY)
    assert len(handler.log) == 1


def test_sha1_mismatch_deletes_partial(range_server, tmp_path):
    base, _ = range_server
    wrong = DumpFile(name=NAME, size=_dump_file().size, sha1="f" * 40, folder=(WIKI, DATE))
    with pytest.raises(DumpError, match="sha1 mismatch"):
        download_file(Mirror(base), wrong, tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("base", ["https://dumps.wikimedia.org", "https://dumps.wikimedia.org/", "http://DUMPS.wikimedia.org"])
def test_wikimedia_requires_contact(base):
    with pytest.raises(DumpError, match="contact"):
        Mirror(base)
    assert "me@example.org" in Mirror(base, contact="me@example.org").headers["User-Agent"]


def test_md5_used_when_no_sha1(range_server, tmp_path):
    base, _ = range_server
    status = json.loads((BUNDLED_RUN / "dumpstatus.json").read_text())
    entry = status["jobs"]["articlesmultistreamdump"]["files"][NAME]
    del entry["sha1"]
    dump_file = next(f for f in multistream_files(status, WIKI, DATE) if f.name == NAME)
    assert dump_file.checksum == ("md5", entry["md5"])
    download_file(Mirror(base), dump_file, tmp_path / "out" / NAME, retry=FAST_RETRY)
    assert (tmp_path / "out" / NAME).read_bytes() == (BUNDLED_RUN / NAME).read_bytes()

    wrong = DumpFile(name=NAME, size=dump_file.size, md5="0" * 32, folder=(WIKI, DATE))
    with pytest.raises(DumpError, match="md5 mismatch"):
        download_file(Mirror(base), wrong, tmp_path / "again" / NAME, retry=FAST_RETRY)


def test_file_without_checksum_is_not_ready():
    from pipeline.dump import DumpNotReady

    status = json.loads((BUNDLED_RUN / "dumpstatus.json").read_text())
    entry = status["jobs"]["articlesmultistreamdump"]["files"][NAME]
    del entry["sha1"], entry["md5"]
    with pytest.raises(DumpNotReady, match="missing sha1 or md5"):
        multistream_files(status, WIKI, DATE)


def test_earlier_copy_is_reused_only_when_intact(tmp_path):
    from pipeline.dump import reuse_verified_copy

    damaged = tmp_path / "damaged.bz2"
    damaged.write_bytes(b"x" * _dump_file().size)
    intact = tmp_path / "intact.bz2"
    intact.write_bytes((BUNDLED_RUN / NAME).read_bytes())
    destination = tmp_path / "run" / NAME

    assert reuse_verified_copy([tmp_path / "missing.bz2", damaged], _dump_file(), destination) is None
    assert not destination.exists()
    assert reuse_verified_copy([damaged, intact], _dump_file(), destination) == intact
    assert destination.read_bytes() == intact.read_bytes()
