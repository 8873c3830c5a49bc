"""The article record and its Parquet schema: the public contract of the shards.

Every Parquet file the pipeline writes (the extraction output and the
dataset shards) has exactly these columns, in this order:

| column      | type                    | meaning                                             |
|-------------|-------------------------|-----------------------------------------------------|
| page_id     | int64                   | MediaWiki page id, stable across dumps              |
| revision_id | int64                   | id of the revision the text comes from              |
| timestamp   | timestamp[us, tz=UTC]   | when that revision was saved                        |
| title       | string                  | page title, spaces not underscores                  |
| url         | string                  | https URL of the article on its wiki                |
| text        | string                  | plain text under the text policy (pipeline.wikitext) |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    pa.field("page_id", pa.int64(), nullable=False),
    pa.field("revision_id", pa.int64(), nullable=False),
    pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("title", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
])
COLUMNS = tuple(SCHEMA.names)
COMPRESSION = "zstd"


@dataclass(frozen=True)
class Article:
    """One extracted article."""

    page_id: int
    revision_id: int
    timestamp: dt.datetime
    title: str
    url: str
    text: str


def to_table(articles: Sequence[Article], metadata: dict[str, str] | None = None) -> pa.Table:
    """Return the articles as a pyarrow Table with the public schema."""
    schema = SCHEMA.with_metadata(metadata) if metadata else SCHEMA
    return pa.Table.from_pydict({name: [getattr(article, name) for article in articles] for name in COLUMNS}, schema=schema)


class ArticleWriter:
    """Write articles to one zstd Parquet file in row groups of bounded text size.

    Use as a context manager; the file is complete only after a clean exit.
    """

    def __init__(self, path: Path, metadata: dict[str, str] | None = None, row_group_bytes: int = 32 << 20):
        self.path = path
        self.metadata = metadata
        self.row_group_bytes = row_group_bytes
        self.rows = 0
        self.text_bytes = 0
        self._pending: list[Article] = []
        self._pending_bytes = 0
        self._writer = pq.ParquetWriter(path, SCHEMA.with_metadata(metadata) if metadata else SCHEMA, compression=COMPRESSION)

    def write(self, article: Article) -> None:
        size = len(article.text.encode("utf-8"))
        self._pending.append(article)
        self._pending_bytes += size
        self.rows += 1
        self.text_bytes += size
        if self._pending_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(to_table(self._pending, self.metadata))
            self._pending = []
            self._pending_bytes = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __enter__(self) -> "ArticleWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self._writer.close()


def copy_articles(source: Path, destination: Path, metadata: dict[str, str] | None = None,
                  batch_rows: int = 4096) -> int:
    """Copy a Parquet file of articles to `destination` with new file metadata, streaming; return the rows copied."""
    schema = SCHEMA.with_metadata(metadata) if metadata else SCHEMA
    rows = 0
    with pq.ParquetWriter(destination, schema, compression=COMPRESSION) as writer:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows, columns=list(COLUMNS)):
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
            rows += batch.num_rows
    return rows


def read_articles(paths: Iterable[Path], batch_rows: int = 256) -> Iterator[Article]:
    """Yield articles from Parquet files with the public schema, streaming by batches."""
    for path in paths:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=list(COLUMNS)):
            for row in batch.to_pylist():
                yield Article(**row)


def iter_texts(paths: Iterable[Path], batch_rows: int = 256) -> Iterator[str]:
    """Yield only the text column of Parquet files, streaming by batches."""
    for path in paths:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=["text"]):
            yield from batch.column(0).to_pylist()
