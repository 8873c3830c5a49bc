"""Parquet shards and the vocabulary: written, then read back with pyarrow and pandas."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.articles import COLUMNS, SCHEMA, Article
from pipeline.extract import ExtractionStats, iter_articles
from pipeline.shards import SPLITS, check_fractions, shard_paths, split_of, write_shards
from pipeline.vocabulary import UNKNOWN_ID, Vocabulary, build_vocabulary, count_characters

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP


@pytest.fixture(scope="module")
def bundled_articles():
    return list(iter_articles([BUNDLED_DUMP], ExtractionStats(), default_site_base="https://en.wikipedia.org/wiki/"))


def _article(page_id: int, text: str) -> Article:
    return Article(page_id=page_id, revision_id=page_id * 10, timestamp=dt.datetime(2016, 5, 1, tzinfo=dt.timezone.utc),
                   title=f"Page {page_id}", url=f"https://en.wikipedia.org/wiki/Page_{page_id}", text=text)


def test_split_rule_is_documented_hash():
    for page_id in (10, 12, 25, 30302, 123456789):
        position = int.from_bytes(hashlib.sha256(b"wikichar-split:%d" % page_id).digest()[:8], "big") / 2**64
        if position < 0.05:
            expected = "test"
        elif position < 0.1:
            expected = "validation"
        else:
            expected = "train"
        assert split_of(page_id, 0.05, 0.05) == expected


def test_split_shares_close_to_fractions():
    counts = Counter(split_of(page_id, 0.1, 0.2) for page_id in range(20000))
    assert abs(counts["validation"] / 20000 - 0.1) < 0.01
    assert abs(counts["test"] / 20000 - 0.2) < 0.01


def test_test_split_independent_of_validation_fraction():
    test_pages = {page for page in range(5000) if split_of(page, 0.05, 0.1) == "test"}
    assert test_pages == {page for page in range(5000) if split_of(page, 0.3, 0.1) == "test"}


@pytest.mark.parametrize("validation, test", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0), (0.2, 1.2)])
def test_invalid_fractions_rejected(validation, test):
    with pytest.raises(ValueError):
        check_fractions(validation, test)


def test_shards_round_trip(tmp_path, bundled_articles):
    manifest = write_shards(bundled_articles, tmp_path, validation_fraction=0.1, test_fraction=0.1,
                            max_shard_bytes=500_000, metadata={"wiki": "enwiki", "date": "20160501"})

    # Every article lands in exactly one shard, in the split its page id gives.
    frames = []
    for split in SPLITS:
        for path in shard_paths(tmp_path, manifest, split):
            table = pq.read_table(path)
            assert table.schema.equals(SCHEMA, check_metadata=False)
            assert table.schema.metadata[b"wiki"] == b"enwiki"
            frame = table.to_pandas()
            assert all(split_of(page_id, 0.1, 0.1) == split for page_id in frame["page_id"])
            frames.append(frame)
    combined = pd.concat(frames).sort_values("page_id")
    assert list(combined.columns) == list(COLUMNS)
    assert list(combined["page_id"]) == [article.page_id for article in bundled_articles]
    by_id = {article.page_id: article for article in bundled_articles}
    assert all(row.text == by_id[row.page_id].text for row in combined.itertuples())
    assert str(combined["timestamp"].dtype) == "datetime64[us, UTC]"

    # Shards are bounded: only the article that crosses the bound may pass it.
    train = [shard for shard in manifest["shards"] if shard["split"] == "train"]
    assert len(train) > 1
    longest = max(len(article.text.encode()) for article in bundled_articles)
    assert all(shard["text_bytes"] < 500_000 + longest for shard in train)
    assert [shard["file"] for shard in train] == [f"train-{n:05d}-of-{len(train):05d}.parquet" for n in range(len(train))]

    # The manifest's counts and checksums describe the files.
    for shard in manifest["shards"]:
        path = tmp_path / shard["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
        assert path.stat().st_size == shard["bytes"]
        assert pq.ParquetFile(path).metadata.num_rows == shard["rows"]
    assert sum(totals["articles"] for totals in manifest["splits"].values()) == BUNDLED_ARTICLES
    assert pq.ParquetFile(tmp_path / train[0]["file"]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_empty_split_still_has_a_file(tmp_path):
    manifest = write_shards([_article(1, "a"), _article(2, "b")], tmp_path, 0.0, 0.0, 10**6, {})
    paths = shard_paths(tmp_path, manifest, "test")
    assert [path.name for path in paths] == ["test-00000-of-00001.parquet"]
    assert pq.read_table(paths[0]).num_rows == 0


def test_vocabulary_coverage():
    counts = Counter({"a": 9000, "b": 900, "c": 90, "d": 9, "e": 1})
    vocabulary, document = build_vocabulary(counts, 0.999)
    assert vocabulary.characters == ("a", "b", "c")
    assert document["coverage"] == pytest.approx(0.999)
    assert document["size"] == 4

    full, _ = build_vocabulary(counts, 1.0)
    assert full.characters == ("a", "b", "c", "d", "e")


def test_vocabulary_ties_broken_by_code_point():
    vocabulary, _ = build_vocabulary(Counter({"z": 5, "a": 5, "m": 5}), 1.0)
    assert vocabulary.characters == ("a", "m", "z")


@pytest.mark.parametrize("coverage", [0.0, -1.0, 1.5])
def test_vocabulary_rejects_invalid_coverage(coverage):
    with pytest.raises(ValueError, match="Invalid coverage"):
        build_vocabulary(Counter("abc"), coverage)


def test_vocabulary_round_trip(tmp_path, bundled_articles):
    import json

    counts = count_characters(article.text for article in bundled_articles)
    vocabulary, document = build_vocabulary(counts, 0.9999)
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    loaded = Vocabulary.load(path)
    assert loaded == vocabulary
    assert loaded.fingerprint == document["fingerprint"]

    text = bundled_articles[0].text
    ids = loaded.encode(text)
    assert len(ids) == len(text)
    assert loaded.decode(ids) == "".join(c if c in set(loaded.characters) else "\ufffd" for c in text)
    # Code points, not bytes: a character outside the Basic Multilingual Plane is one id.
    assert list(loaded.encode("\U0001F600")) == [UNKNOWN_ID]
