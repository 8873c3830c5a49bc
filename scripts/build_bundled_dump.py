"""Rebuild the bundled English dump in mirror/ from a pages-articles excerpt.

The repository ships mirror/enwiki/20160501/, made by this script from the
excerpt of the English Wikipedia dump of May 2016 that gensim's test data
carries (106 articles and 100 redirects). It recompresses the pages as a
multistream dump with its index, 100 pages per stream, and writes the
dumpstatus.json that Wikimedia would publish beside them.

    python scripts/build_bundled_dump.py enwiki-2016-sample-pages-articles.xml.bz2

The output is byte for byte reproducible: rerunning it on the same input
gives the same files and checksums.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import json
from pathlib import Path

from pipeline.multistream import build_multistream

WIKI = "enwiki"
DATE = "20160501"
UPDATED = "2016-05-03 08:14:07"


def file_entry(path: Path) -> dict:
    data = path.read_bytes()
    return {
        "size": len(data),
        "url": f"/{WIKI}/{DATE}/{path.name}",
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="pages-articles XML excerpt, bzip2-compressed")
    parser.add_argument("--mirror", type=Path, default=Path(__file__).resolve().parent.parent / "mirror")
    arguments = parser.parse_args()

    run = arguments.mirror / WIKI / DATE
    run.mkdir(parents=True, exist_ok=True)
    dump = run / f"{WIKI}-{DATE}-pages-articles-multistream.xml.bz2"
    index = run / f"{WIKI}-{DATE}-pages-articles-multistream-index.txt.bz2"
    with bz2.open(arguments.source, "rb") as lines:
        pages = build_multistream(lines, dump, index)

    status = {
        "jobs": {
            "articlesmultistreamdump": {
                "status": "done",
                "updated": UPDATED,
                "files": {path.name: file_entry(path) for path in (dump, index)},
            },
        },
        "version": "0.8",
    }
    (run / "dumpstatus.json").write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {pages} pages to {dump} and {index}")


if __name__ == "__main__":
    main()
