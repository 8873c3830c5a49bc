"""Write articles in the formats other tools read: wikiextractor's <doc> blocks, JSON lines, Parquet.

Files follow wikiextractor's layout: folders AA, AB, ... with files
wiki_00 ... wiki_99 each, a new file once one contains `max_bytes` of output.
Writing to "-" sends everything to standard output instead.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import IO, Optional

from pipeline.articles import Article, ArticleWriter

FORMATS = ("doc", "json", "parquet")
FILES_PER_FOLDER = 100


def format_doc(article: Article) -> str:
    """Return an article as a wikiextractor <doc> block: the title, a blank line, then the text."""
    return (
        f'<doc id="{article.page_id}" url="{html.escape(article.url)}" title="{html.escape(article.title)}">\n'
        f"{article.title}\n\n{article.text}\n</doc>\n"
    )


def format_json(article: Article) -> str:
    """Return an article as one JSON line with wikiextractor's keys (ids as strings)."""
    record = {"id": str(article.page_id), "revid": str(article.revision_id), "url": article.url,
              "title": article.title, "text": article.text}
    return json.dumps(record, ensure_ascii=False) + "\n"


def folder_name(number: int) -> str:
    """Return wikiextractor's two-letter folder name for folder `number`: 0 -> AA, 1 -> AB, 26 -> BA."""
    if not 0 <= number < 26 * 26:
        raise ValueError(f"Too many output folders ({number + 1}); raise the file size with -b.")
    return chr(ord("A") + number // 26) + chr(ord("A") + number % 26)


class RotatingWriter:
    """Write articles into rotating files under `root`, or to standard output when root is "-"."""

    def __init__(self, root: str, output_format: str, max_bytes: int):
        if output_format not in FORMATS:
            raise ValueError(f"Unknown format {output_format!r}: expected one of {', '.join(FORMATS)}.")
        if root == "-" and output_format == "parquet":
            raise ValueError("Parquet output needs a folder: give -o DIR, not -o -.")
        if max_bytes < 1:
            raise ValueError(f"Invalid file size {max_bytes}: expected a positive number of bytes.")
        self.root = None if root == "-" else Path(root)
        self.output_format = output_format
        self.max_bytes = max_bytes
        self.files = 0
        self.articles = 0
        self._text: Optional[IO[str]] = None
        self._parquet: Optional[ArticleWriter] = None
        self._size = 0

    def _next_path(self) -> Path:
        path = self.root / folder_name(self.files // FILES_PER_FOLDER) / f"wiki_{self.files % FILES_PER_FOLDER:02d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files += 1
        return path.with_suffix(".parquet") if self.output_format == "parquet" else path

    def write(self, article: Article) -> None:
        self.articles += 1
        if self.output_format == "parquet":
            if self._parquet is None:
                self._parquet = ArticleWriter(self._next_path())
            self._parquet.write(article)
            if self._parquet.text_bytes >= self.max_bytes:
                self._parquet.close()
                self._parquet = None
            return

        block = format_json(article) if self.output_format == "json" else format_doc(article)
        if self.root is None:
            sys.stdout.write(block)
            return
        size = len(block.encode("utf-8"))
        # Like wikiextractor, start a new file before a write would pass the size.
        # An article larger than the size alone still gets a file of its own.
        if self._text is not None and self._size + size > self.max_bytes:
            self._text.close()
            self._text = None
        if self._text is None:
            self._text = open(self._next_path(), "w", encoding="utf-8")
            self._size = 0
        self._text.write(block)
        self._size += size

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
            self._text = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self.root is None:
            sys.stdout.flush()
