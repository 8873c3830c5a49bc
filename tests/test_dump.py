"""Mirrors, dumpstatus.json, verified downloads and the multistream layout, on real files."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import pytest

from pipeline.dump import DumpError, DumpNotReady, Mirror, download_file, multistream_files, resolve_latest_date, wiki_name
from pipeline.extract import ExtractionStats, iter_articles
from pipeline.multistream import build_multistream, read_index, stream_offsets

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP, BUNDLED_RUN, BUNDLED_SKIPPED, DATA

WIKI, DATE = "enwiki", "20160501"


def _status(folder: Path) -> dict:
    return json.loads((folder / WIKI / DATE / "dumpstatus.json").read_text())


def _add_run(folder: Path, date: str, status: dict) -> None:
    """Add a run dated `date` whose status lists the bundled files under that date's names and URLs."""
    run = folder / WIKI / date
    run.mkdir(parents=True)
    text = json.dumps(status).replace(DATE, date)
    (run / "dumpstatus.json").write_text(text)


def test_bundled_dump_counts():
    stats = ExtractionStats()
    articles = list(iter_articles([BUNDLED_DUMP], stats, default_site_base="https://en.wikipedia.org/wiki/"))
    assert stats.pages == 206
    assert stats.articles == len(articles) == BUNDLED_ARTICLES
    assert stats.skipped == BUNDLED_SKIPPED
    assert articles[0].title == "Anarchism"
    assert articles[0].url == "https://en.wikipedia.org/wiki/Anarchism"


def test_bundled_index_points_at_streams():
    entries = list(read_index(BUNDLED_RUN / "enwiki-20160501-pages-articles-multistream-index.txt.bz2"))
    assert len(entries) == 206
    assert [entry.page_id for entry in entries] == sorted(entry.page_id for entry in entries)
    data = BUNDLED_DUMP.read_bytes()
    for offset in stream_offsets(BUNDLED_RUN / "enwiki-20160501-pages-articles-multistream-index.txt.bz2"):
        # Each indexed offset starts a complete bzip2 stream of whole pages.
        decompressor = bz2.BZ2Decompressor()
        text = decompressor.decompress(data[offset:])
        assert decompressor.eof
        assert text.lstrip().startswith(b"<page>")
        assert text.rstrip().endswith(b"</page>")


def test_multistream_matches_wikimedia_recompressxml(tmp_path):
    with bz2.open(DATA / "elwikivoyage-pages-articles-p2566p2583.xml.bz2", "rb") as lines:
        pages = build_multistream(lines, tmp_path / "out.xml.bz2", tmp_path / "index.txt.bz2", pages_per_stream=5)
    assert pages == 17
    assert (tmp_path / "out.xml.bz2").read_bytes() == (DATA / "elwikivoyage-pages-articles-p2566p2583.multistream-5pps.xml.bz2").read_bytes()
    expected_index = bz2.decompress((DATA / "elwikivoyage-pages-articles-p2566p2583.multistream-5pps-index.txt.bz2").read_bytes())
    assert bz2.decompress((tmp_path / "index.txt.bz2").read_bytes()) == expected_index


def test_multistream_rejects_truncated_dump(tmp_path):
    lines = [b"<mediawiki>\n", b"  <page>\n", b"    <title>A</title>\n"]
    with pytest.raises(ValueError, match="truncated"):
        build_multistream(lines, tmp_path / "out.bz2", tmp_path / "index.bz2")


@pytest.mark.parametrize("language, expected", [("en", "enwiki"), ("zh-yue", "zh_yuewiki"), ("simple", "simplewiki")])
def test_wiki_name(language, expected):
    assert wiki_name(language) == expected


@pytest.mark.parametrize("language", ["", "EN", "en/../x", "en wiki"])
def test_wiki_name_rejects_invalid(language):
    with pytest.raises(ValueError, match="Invalid language code"):
        wiki_name(language)


def test_latest_skips_incomplete_runs(mirror_copy):
    done = _status(mirror_copy)
    in_progress = json.loads(json.dumps(done))
    in_progress["jobs"]["articlesmultistreamdump"]["status"] = "in-progress"
    unpublished = json.loads(json.dumps(done))
    for name, entry in unpublished["jobs"]["articlesmultistreamdump"]["files"].items():
        # A file still being written lists only its size so far.
        unpublished["jobs"]["articlesmultistreamdump"]["files"][name] = {"size": entry["size"] // 2}
    _add_run(mirror_copy, "20160601", in_progress)
    _add_run(mirror_copy, "20160620", unpublished)
    _add_run(mirror_copy, "20160701", {"jobs": {}})
    (mirror_copy / WIKI / "latest").mkdir()

    mirror = Mirror(str(mirror_copy))
    assert mirror.list_dates(WIKI) == ["20160701", "20160620", "20160601", "20160501"]
    assert resolve_latest_date(mirror, WIKI) == "20160501"


def test_latest_fails_without_complete_run(tmp_path):
    (tmp_path / WIKI / "20200101").mkdir(parents=True)
    (tmp_path / WIKI / "20200101" / "dumpstatus.json").write_text("{not json")
    with pytest.raises(DumpError, match="No complete multistream dump of enwiki"):
        resolve_latest_date(Mirror(str(tmp_path)), WIKI)


@pytest.mark.parametrize("name", [
    "../../etc/passwd",
    "enwiki-20160501-pages-articles-multistream.xml.bz2/../../x.bz2",
    "dewiki-20160501-pages-articles-multistream.xml.bz2",
])
def test_unexpected_file_names_rejected(name):
    status = json.loads((BUNDLED_RUN / "dumpstatus.json").read_text())
    status["jobs"]["articlesmultistreamdump"]["files"][name] = {"url": f"/{WIKI}/{DATE}/{name}", "size": 1, "sha1": "0" * 40}
    with pytest.raises(DumpError, match="unexpected file name"):
        multistream_files(status, WIKI, DATE)


def test_job_not_done_is_not_ready():
    status = json.loads((BUNDLED_RUN / "dumpstatus.json").read_text())
    status["jobs"]["articlesmultistreamdump"]["status"] = "failed"
    with pytest.raises(DumpNotReady, match="'failed', not 'done'"):
        multistream_files(status, WIKI, DATE)


def test_http_mirror_download(http_mirror, tmp_path):
    base, _, requests = http_mirror
    mirror = Mirror(base, contact="tests@example.org")
    assert resolve_latest_date(mirror, WIKI) == DATE

    files = multistream_files(mirror.read_status(WIKI, DATE), WIKI, DATE)
    for dump_file in files:
        destination = download_file(mirror, dump_file, tmp_path / dump_file.name)
        assert destination.read_bytes() == (BUNDLED_RUN / dump_file.name).read_bytes()

    user_agents = {agent for _, agent in requests}
    assert len(user_agents) == 1
    agent = user_agents.pop()
    assert agent.startswith("wikichar/")
    assert "tests@example.org" in agent
    assert f"/{WIKI}/" in [path for path, _ in requests]


def test_http_sha1_mismatch_fails_and_leaves_nothing(http_mirror, tmp_path):
    base, folder, _ = http_mirror
    status = _status(folder)
    name = "enwiki-20160501-pages-articles-multistream.xml.bz2"
    status["jobs"]["articlesmultistreamdump"]["files"][name]["sha1"] = "0" * 40
    (folder / WIKI / DATE / "dumpstatus.json").write_text(json.dumps(status))

    mirror = Mirror(base)
    dump_file = next(f for f in multistream_files(mirror.read_status(WIKI, DATE), WIKI, DATE) if f.name == name)
    downloads = tmp_path / "downloads"
    with pytest.raises(DumpError) as raised:
        download_file(mirror, dump_file, downloads / name)
    message = str(raised.value)
    assert "sha1 mismatch" in message
    assert "0" * 40 in message
    assert "896388bcc2c290d922021c97417db237bbdd0490" in message
    assert list(downloads.iterdir()) == []


def test_size_mismatch_fails(mirror_copy, tmp_path):
    status = _status(mirror_copy)
    name = "enwiki-20160501-pages-articles-multistream-index.txt.bz2"
    status["jobs"]["articlesmultistreamdump"]["files"][name]["size"] += 1
    mirror = Mirror(str(mirror_copy))
    dump_file = next(f for f in multistream_files(status, WIKI, DATE) if f.name == name)
    with pytest.raises(DumpError, match="Size mismatch"):
        download_file(mirror, dump_file, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_file_url_mirror(tmp_path):
    mirror = Mirror(BUNDLED_RUN.parent.parent.as_uri())
    assert resolve_latest_date(mirror, WIKI) == DATE
    index = next(f for f in multistream_files(mirror.read_status(WIKI, DATE), WIKI, DATE) if f.is_index)
    download_file(mirror, index, tmp_path / index.name)
    assert (tmp_path / index.name).stat().st_size == index.size


def test_http_missing_run_is_clear(http_mirror):
    base, _, _ = http_mirror
    with pytest.raises(DumpError, match="Failed to read .*/enwiki/20000101/dumpstatus.json"):
        Mirror(base).read_status(WIKI, "20000101")


def test_latest_takes_newest_complete_run(mirror_copy):
    # The same files under a newer date: that run is complete, so it wins.
    _add_run(mirror_copy, "20160601", _status(mirror_copy))
    assert resolve_latest_date(Mirror(str(mirror_copy)), WIKI) == "20160601"
