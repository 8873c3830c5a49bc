"""Split articles into train, validation and test, and write them as Parquet shards.

The split of a page depends only on its page id, so a page stays in the same
split in every dump, and anyone can recompute it:

    u = first 8 bytes of sha256(b"wikichar-split:" + str(page_id)), big-endian, / 2**64
    test        if u < test_fraction
    validation  if u < test_fraction + validation_fraction
    train       otherwise

Test comes first, so changing the validation fraction never moves a page
into or out of the test split.

Shards follow the Hugging Face naming convention, `train-00000-of-00003.parquet`.
Each contains at most `max_shard_bytes` of UTF-8 text, except that an article is
never cut, so a shard can pass the bound by one article. Every split has at
least one shard, possibly empty. _manifest.json lists every shard with its rows,
characters, bytes and sha256, the totals per split, the schema and the
settings that produced them.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Iterable, Optional

from pipeline.articles import COLUMNS, SCHEMA, Article, ArticleWriter
from pipeline.storage import file_digest

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_SALT = b"wikichar-split:"
# The leading underscore makes pyarrow, pandas and DuckDB skip it when reading the folder as a dataset.
MANIFEST = "_manifest.json"


def split_of(page_id: int, validation_fraction: float, test_fraction: float) -> str:
    """Return the split ("train", "validation" or "test") of a page id."""
    digest = hashlib.sha256(SPLIT_SALT + str(page_id).encode("ascii")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < test_fraction:
        return "test"
    if position < test_fraction + validation_fraction:
        return "validation"
    return "train"


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    """Raise ValueError unless both fractions are in [0, 1) and leave room for training."""
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"Invalid {name} {value}: expected a share between 0 and 1, such as 0.05.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction is {validation_fraction + test_fraction}, "
            "which leaves no pages for training: keep the sum below 1."
        )


class _SplitWriter:
    """Writes one split's shards, starting a new file when the current one is full."""

    def __init__(self, directory: Path, split: str, max_shard_bytes: int, metadata: dict[str, str]):
        self.directory = directory
        self.split = split
        self.max_shard_bytes = max_shard_bytes
        self.metadata = metadata
        self.finished: list[dict[str, Any]] = []
        self.current: Optional[ArticleWriter] = None
        self.characters = 0

    def _path(self, number: int) -> Path:
        return self.directory / f"{self.split}-{number:05d}.parquet"

    def write(self, article: Article) -> None:
        if self.current is None:
            self.current = ArticleWriter(self._path(len(self.finished)), self.metadata)
            self.characters = 0
        self.current.write(article)
        self.characters += len(article.text)
        if self.current.text_bytes >= self.max_shard_bytes:
            self._close_current()

    def _close_current(self) -> None:
        writer = self.current
        writer.close()
        self.finished.append({"path": writer.path, "rows": writer.rows, "characters": self.characters, "text_bytes": writer.text_bytes})
        self.current = None

    def close(self) -> list[dict[str, Any]]:
        if self.current is None and not self.finished:
            # An empty split still gets one file, so readers always find the schema.
            self.current = ArticleWriter(self._path(0), self.metadata)
            self.characters = 0
        if self.current is not None:
            self._close_current()
        return self.finished


def write_shards(
    articles: Iterable[Article],
    directory: Path,
    validation_fraction: float,
    test_fraction: float,
    max_shard_bytes: int,
    metadata: dict[str, str],
) -> dict[str, Any]:
    """Write `articles` as shards into the empty folder `directory`; return the manifest body.

    `metadata` is stored in every file's Parquet key-value metadata. The
    caller adds its settings and sources to the manifest and writes it.
    """
    check_fractions(validation_fraction, test_fraction)
    if max_shard_bytes < 1:
        raise ValueError(f"Invalid max_shard_bytes {max_shard_bytes}: expected a positive number of bytes.")

    writers = {split: _SplitWriter(directory, split, max_shard_bytes, metadata) for split in SPLITS}
    for article in articles:
        writers[split_of(article.page_id, validation_fraction, test_fraction)].write(article)

    shards = []
    totals = {}
    for split, writer in writers.items():
        written = writer.close()
        for number, shard in enumerate(written):
            final = directory / f"{split}-{number:05d}-of-{len(written):05d}.parquet"
            shard["path"].rename(final)
            shards.append({
                "file": final.name,
                "split": split,
                "rows": shard["rows"],
                "characters": shard["characters"],
                "text_bytes": shard["text_bytes"],
                "bytes": final.stat().st_size,
                "sha256": file_digest(final),
            })
        totals[split] = {
            "articles": sum(shard["rows"] for shard in written),
            "characters": sum(shard["characters"] for shard in written),
            "text_bytes": sum(shard["text_bytes"] for shard in written),
            "shards": len(written),
        }
        log.info("Split %s: %d articles, %d characters in %d shards", split, totals[split]["articles"], totals[split]["characters"], len(written))

    return {
        "schema": [{"name": field.name, "type": str(field.type)} for field in SCHEMA],
        "columns": list(COLUMNS),
        "compression": "zstd",
        "split_rule": "sha256(b'wikichar-split:' + page_id) as u in [0, 1): test if u < test_fraction, "
                      "validation if u < test_fraction + validation_fraction, else train",
        "splits": totals,
        "shards": shards,
    }


def shard_paths(directory: Path, manifest: dict[str, Any], split: str) -> list[Path]:
    """Return the shard files of one split, in order."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: expected one of {', '.join(SPLITS)}.")
    return [directory / shard["file"] for shard in manifest["shards"] if shard["split"] == split]
