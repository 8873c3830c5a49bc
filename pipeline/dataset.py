"""Read a build's Parquet shards as a dataset: find them, stream articles, export them.

    from pipeline.dataset import find_shards, iter_articles

    shards = find_shards("data", "en")                  # the newest build of English
    for row in iter_articles(shards, "train", columns=["title", "text"], titles={"Anarchism"}):
        print(row["title"], len(row["text"]))

    python -m pipeline.dataset export data/enwiki/20160501/shards/<folder> --split train --format json -o out/

A data root or shard folder may also be an s3:// or gs:// URI: its shards
are downloaded into the local cache first (see pipeline.data_root).
Rows are dicts with the public schema's columns (see pipeline.articles).
Reading streams record batches, so memory use does not grow with the split.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Collection, Iterator, Optional, Sequence

import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.articles import COLUMNS, Article
from pipeline.data_root import SUCCESS_MARKER, DataRoot, StorageError
from pipeline.dump import DATE_PATTERN, check_date, wiki_name
from pipeline.export import RotatingWriter
from pipeline.shards import MANIFEST, SPLITS, shard_paths
from pipeline.storage import read_json

log = logging.getLogger(__name__)


def find_shards(data_root: str | Path, lang: str, date: Optional[str] = None, cache_root: Optional[str] = None) -> Path:
    """Return the shard folder of the newest build of `lang` under `data_root`, or of `date` (YYYYMMDD).

    A build is a dump date with a shard folder that has its _manifest.json.
    Where one date has shard folders of several settings, the most recently
    written one is returned and the others are named in a log line. Raises
    FileNotFoundError naming the folder searched. For an s3:// or gs:// data
    root, the complete shard folders (those with _SUCCESS) are searched, the
    one chosen is downloaded into `cache_root`, and its local path is
    returned. There, of several folders for one date, the last by name wins.
    """
    data = DataRoot(str(data_root), cache_root)
    if data.remote:
        return _find_stored_shards(data, lang, date)
    wiki_dir = Path(data_root) / wiki_name(lang)
    if date is not None:
        dates = [check_date(date)]
    elif wiki_dir.is_dir():
        dates = sorted((entry.name for entry in wiki_dir.iterdir() if DATE_PATTERN.match(entry.name)), reverse=True)
    else:
        dates = []
    for candidate in dates:
        manifests = sorted((wiki_dir / candidate / "shards").glob(f"*/{MANIFEST}"), key=lambda path: path.stat().st_mtime)
        if manifests:
            if len(manifests) > 1:
                log.info("%s %s has %d shard folders; using the newest, %s (others: %s)", wiki_dir.name, candidate,
                         len(manifests), manifests[-1].parent.name, ", ".join(path.parent.name for path in manifests[:-1]))
            return manifests[-1].parent
    searched = wiki_dir / (date or "*") / "shards"
    raise FileNotFoundError(f"No shards found in {searched}: build them first, for example with "
                            f"`luigi --module tasks WriteShards --lang {lang} --date YYYYMMDD`.")


def _find_stored_shards(data: DataRoot, lang: str, date: Optional[str]) -> Path:
    wiki = wiki_name(lang)
    markers = data.glob(f"{wiki}/{check_date(date) if date else '*'}/shards/*/{SUCCESS_MARKER}")
    if not markers:
        raise FileNotFoundError(f"No complete shards found in {data.root}/{wiki}/{date or '*'}/shards: build them "
                                f"first, for example with `luigi --module tasks WriteShards --lang {lang} --date YYYYMMDD "
                                f"--data-root {data.root}`.")
    newest_date = max(marker.parent.parent.parent.name for marker in markers)
    folders = sorted(marker.parent for marker in markers if marker.parent.parent.parent.name == newest_date)
    if len(folders) > 1:
        log.info("%s %s has %d shard folders; using %s (others: %s)", wiki, newest_date, len(folders),
                 folders[-1].name, ", ".join(folder.name for folder in folders[:-1]))
    data.fetch_folder(folders[-1])
    return folders[-1]


def local_shards(shards: str | Path, cache_root: Optional[str] = None) -> Path:
    """Return a local shard folder: `shards` itself, or, for an s3:// or gs:// URI, its copy in the cache."""
    data = DataRoot(str(shards), cache_root)
    if data.remote:
        data.fetch_folder(data.local)
    return data.local


def iter_articles(shards: str | Path, split: str = "train", columns: Optional[Sequence[str]] = None,
                  titles: Optional[Collection[str]] = None, page_ids: Optional[Collection[int]] = None,
                  batch_rows: int = 1024) -> Iterator[dict]:
    """Yield the rows of one split of a shard folder as dicts, in shard order.

    `columns` selects columns (default: all). `titles` and `page_ids` keep
    only the rows whose title or page id is in them; with both, a row must
    match both. Raises ValueError for an unknown split or column.
    """
    if split not in SPLITS:
        raise ValueError(f"Invalid split {split!r}: expected one of {', '.join(SPLITS)}.")
    selected = list(columns) if columns is not None else list(COLUMNS)
    unknown = [column for column in selected if column not in COLUMNS]
    if unknown:
        raise ValueError(f"Unknown columns {', '.join(unknown)}: the shards have {', '.join(COLUMNS)}.")

    shards = local_shards(shards)
    paths = shard_paths(shards, read_json(shards / MANIFEST), split)
    condition = None
    if titles is not None:
        condition = pc.field("title").isin(list(titles))
    if page_ids is not None:
        by_id = pc.field("page_id").isin(list(page_ids))
        condition = by_id if condition is None else condition & by_id
    dataset = ds.dataset([str(path) for path in paths], format="parquet")
    for batch in dataset.to_batches(columns=selected, filter=condition, batch_size=batch_rows):
        yield from batch.to_pylist()


def export(shards: str | Path, split: str, output_format: str, output: str, max_bytes: int = 1 << 20) -> int:
    """Write one split as wikiextractor's <doc> files ("doc") or JSON lines ("json"); return the article count.

    The files rotate like wikiextractor's (AA/wiki_00, ...) at `max_bytes`;
    an `output` of "-" writes to standard output.
    """
    if output_format not in ("doc", "json"):
        raise ValueError(f"Invalid format {output_format!r}: expected doc or json.")
    writer = RotatingWriter(output, output_format, max_bytes)
    count = 0
    try:
        for row in iter_articles(shards, split):
            writer.write(Article(**row))
            count += 1
    finally:
        writer.close()
    return count


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.dataset",
                                     description="Export one split of a shard folder for tools that read "
                                                 "wikiextractor's output.")
    commands = parser.add_subparsers(dest="command", required=True)
    exporter = commands.add_parser("export", help="write a split as <doc> files or JSON lines")
    exporter.add_argument("shards", help="a shard folder (the one with _manifest.json), or its s3:// or gs:// URI")
    exporter.add_argument("--split", default="train", choices=SPLITS)
    exporter.add_argument("--format", default="json", choices=["json", "doc"],
                          help="json: one JSON object per line; doc: <doc> blocks (default: json)")
    exporter.add_argument("-o", "--output", default="-", help="output folder, or - for standard output (default: -)")
    exporter.add_argument("-b", "--bytes", type=int, default=1 << 20, help="bytes per output file (default: 1 MiB)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    # botocore logs where it found credentials at INFO, which is noise here.
    logging.getLogger("botocore").setLevel(logging.WARNING)

    try:
        shards = local_shards(arguments.shards)
    except StorageError as error:
        parser.error(str(error))
    if not (shards / MANIFEST).is_file():
        parser.error(f"{arguments.shards} has no {MANIFEST}: give a shard folder written by the pipeline")
    count = export(shards, arguments.split, arguments.format, arguments.output, arguments.bytes)
    log.info("Exported %d articles of the %s split", count, arguments.split)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
