"""The shards as a dataset: the Python API, the exports, and every example in docs/dataset.md."""

from __future__ import annotations

import json
import re

import pytest

from pipeline import extract, shards
from pipeline.dataset import export, find_shards, iter_articles, main

from conftest import BUNDLED_ARTICLES, BUNDLED_DUMP, REPO

DATE = "20160501"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A data root with the bundled dump's shards where a build puts them."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "enwiki" / DATE / "shards" / "val0.05-test0.05-1MB-0123456789"
    folder.mkdir(parents=True)
    articles = extract.iter_articles([BUNDLED_DUMP], extract.ExtractionStats(),
                                     default_site_base="https://en.wikipedia.org/wiki/")
    manifest = shards.write_shards(articles, folder, validation_fraction=0.05, test_fraction=0.05,
                                   max_shard_bytes=1_000_000, metadata={"wiki": "enwiki", "date": DATE})
    (folder / shards.MANIFEST).write_text(json.dumps(manifest))
    return root


def test_find_shards_newest_and_by_date(data_root):
    assert find_shards(data_root, "en") == find_shards(data_root, "en", date=DATE)
    with pytest.raises(FileNotFoundError, match="No shards found in .*enwiki/20000101/shards"):
        find_shards(data_root, "en", date="20000101")
    with pytest.raises(FileNotFoundError, match="No shards found in .*dewiki"):
        find_shards(data_root, "de")


def test_iter_articles_splits_columns_and_filters(data_root):
    folder = find_shards(data_root, "en")
    counts = {split: sum(1 for _ in iter_articles(folder, split, columns=["page_id"])) for split in shards.SPLITS}
    assert sum(counts.values()) == BUNDLED_ARTICLES

    rows = list(iter_articles(folder, "train", columns=["title", "page_id"], titles={"Anarchism", "No such page"}))
    assert rows == [{"title": "Anarchism", "page_id": 12}]
    both = list(iter_articles(folder, "train", columns=["title"], titles={"Anarchism"}, page_ids={13}))
    assert both == []
    assert next(iter_articles(folder, "train")).keys() == {"page_id", "revision_id", "timestamp", "title", "url", "text"}


@pytest.mark.parametrize("arguments, message", [
    ({"split": "dev"}, "Invalid split 'dev'"),
    ({"columns": ["title", "body"]}, "Unknown columns body"),
])
def test_iter_articles_rejects_bad_arguments(data_root, arguments, message):
    with pytest.raises(ValueError, match=message):
        next(iter_articles(find_shards(data_root, "en"), **arguments))


@pytest.mark.parametrize("output_format, pattern", [("json", r'^\{"id": "\d+", "revid": "\d+", "url": '),
                                                     ("doc", r'^<doc id="\d+" url="[^"]+" title="[^"]+">\n')])
def test_export_formats(data_root, tmp_path, output_format, pattern):
    folder = find_shards(data_root, "en")
    count = export(folder, "train", output_format, str(tmp_path / "out"))
    assert count == sum(1 for _ in iter_articles(folder, "train", columns=["page_id"]))
    text = (tmp_path / "out" / "AA" / "wiki_00").read_text(encoding="utf-8")
    assert re.match(pattern, text)


def test_export_command_line(data_root, capsys):
    assert main(["export", str(find_shards(data_root, "en")), "--split", "test", "--format", "doc"]) == 0
    assert capsys.readouterr().out.count("</doc>") == sum(1 for _ in iter_articles(find_shards(data_root, "en"), "test"))


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_documented_example_runs(data_root, tmp_path, monkeypatch):
    # Hugging Face datasets writes its cache under HF_HOME and must not try the network.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    blocks = _python_blocks((REPO / "docs" / "dataset.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 7
    namespace = {"DATA_ROOT": str(data_root)}
    for block in blocks:
        exec(compile(block, "docs/dataset.md", "exec"), namespace)
    assert namespace["SHARDS"] == str(find_shards(data_root, "en"))
    assert len(namespace["everything"]) == BUNDLED_ARTICLES
    assert namespace["longest"] and len(namespace["longest"]) == 5
    assert namespace["splits"]["train"].num_rows == len(namespace["train"])
