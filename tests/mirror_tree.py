"""Build a mirror tree with several dated runs of the bundled dump, as Wikimedia lays them out.

    enwiki/20160501/   done: the bundled single-file multistream run
    enwiki/20160520/   done: the same pages split into 2 parts, part 2 in 2 page-range files
    enwiki/20160601/   failed
    enwiki/20160701/   in progress
    enwiki/20160801/   a dumpstatus.json that the test server serves as HTTP 503
    enwiki/20160901/   no dumpstatus.json (HTTP 404)
    other/mediawiki_content_current/enwiki/2016-05-01/xml/bzip2/   done: 2 single-stream files
    other/mediawiki_content_current/enwiki/2016-06-01/xml/bzip2/   in progress: no _SUCCESS

So the newest complete multistream run is 20160520 (split) and the newest
complete content export is 20160501.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import re
import shutil
from pathlib import Path

from pipeline.multistream import build_multistream, split_dump

WIKI = "enwiki"
SPLIT_DATE = "20160520"
CONTENT_DATE = "20160501"
UNAVAILABLE_DATE = "20160801"
CONTENT_ROOT = Path("other", "mediawiki_content_current", WIKI)
PAGE_ID = re.compile(rb"<id>(\d+)</id>")


def _file_entry(path: Path, date: str) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "url": f"/{WIKI}/{date}/{path.name}",
            "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}


def _status(job_status: str, files: dict) -> dict:
    return {"jobs": {"articlesmultistreamdump": {"status": job_status, "updated": "2016-05-21 10:00:00",
                                                 "files": files}}, "version": "0.8"}


def _page_range(pages: list[bytes]) -> str:
    ids = [int(PAGE_ID.search(page).group(1)) for page in pages]
    return f"p{min(ids)}p{max(ids)}"


def _write_split_run(run: Path, header: bytes, pages: list[bytes], footer: bytes) -> None:
    """Part 1 contains the first 70 pages; part 2 the rest, in two page-range files, each with its index."""
    run.mkdir(parents=True)
    groups = [(1, pages[:70]), (2, pages[70:140]), (2, pages[140:])]
    files = {}
    for part, group in groups:
        page_range = _page_range(group)
        dump = run / f"{WIKI}-{run.name}-pages-articles-multistream{part}.xml-{page_range}.bz2"
        index = run / f"{WIKI}-{run.name}-pages-articles-multistream-index{part}.txt-{page_range}.bz2"
        build_multistream(b"".join([header, *group, footer]).splitlines(keepends=True), dump, index)
        files[dump.name] = _file_entry(dump, run.name)
        files[index.name] = _file_entry(index, run.name)
    (run / "dumpstatus.json").write_text(json.dumps(_status("done", files), indent=2))


def _write_content_export(folder: Path, date: str, header: bytes, pages: list[bytes], footer: bytes,
                          complete: bool) -> None:
    """Write the pages as files of one bzip2 stream each (2 when there are over 100 pages), with SHA256SUMS
    and, when complete, _SUCCESS."""
    folder.mkdir(parents=True)
    sums = []
    for group in (pages[:100], pages[100:]) if len(pages) > 100 else (pages,):
        path = folder / f"{WIKI}-{date}-{_page_range(group)}.xml.bz2"
        path.write_bytes(bz2.compress(header + b"".join(group) + footer, 9))
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    (folder / "SHA256SUMS").write_text("".join(sums))
    if complete:
        (folder / "_SUCCESS").write_bytes(b"")


def build_mirror_tree(bundled_mirror: Path, root: Path) -> Path:
    """Copy the bundled mirror to `root` and add the runs listed in the module docstring; return `root`."""
    shutil.copytree(bundled_mirror, root)
    bundled_run = root / WIKI / "20160501"
    dump = next(bundled_run.glob("*-multistream.xml.bz2"))
    with bz2.open(dump, "rb") as lines:
        header, pages, footer = split_dump(lines)

    _write_split_run(root / WIKI / SPLIT_DATE, header, pages, footer)

    files = json.loads((bundled_run / "dumpstatus.json").read_text())["jobs"]["articlesmultistreamdump"]["files"]
    for date, job_status, entries in (
        ("20160601", "failed", {name: {"size": entry["size"]} for name, entry in files.items()}),
        ("20160701", "in-progress", {name: {} for name in files}),
        (UNAVAILABLE_DATE, "done", {}),
    ):
        (root / WIKI / date).mkdir()
        (root / WIKI / date / "dumpstatus.json").write_text(json.dumps(_status(job_status, entries)))
    (root / WIKI / "20160901").mkdir()

    _write_content_export(root / CONTENT_ROOT / "2016-05-01" / "xml" / "bzip2", "2016-05-01", header, pages, footer,
                          complete=True)
    _write_content_export(root / CONTENT_ROOT / "2016-06-01" / "xml" / "bzip2", "2016-06-01", header, pages[:50],
                          footer, complete=False)
    return root
