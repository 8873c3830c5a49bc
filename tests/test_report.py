"""The report: escaping of dump and model text, and the files written."""

from __future__ import annotations

import json

from pipeline.report import render_html, render_markdown, write_report

HOSTILE = '<script>alert("x")</script>'


def _metrics(**overrides):
    metrics = {
        "wiki": "enwiki", "date": "20160501", "pages": 3, "skipped": {"redirect": 1}, "failed": {HOSTILE: 1},
        "articles": {"train": 1, "validation": 1, "test": 0}, "characters": {"train": 10, "validation": 5, "test": 0},
        "vocabulary_size": 5, "vocabulary_coverage": 1.0, "cell": "lstm", "layers": 1, "hidden_size": 8, "parameters": 100,
        "steps": 2, "stopped_by": "max_steps", "training_seconds": 1.0, "characters_per_second": 10.0, "device": "cpu",
        "train_bpc": 2.0, "val_bpc": 2.1, "unigram_bpc": 3.0, "command": f"luigi --prompts '{HOSTILE}'",
        "source": "multistream", "embedding_size": 4, "preset": "tiny", "text_bytes": {"train": 10, "validation": 5, "test": 0},
        "dump_files": [{"name": "enwiki-20160501-pages-articles-multistream.xml.bz2", "size": 1234, "checksum": "sha1:ab"}],
        "extraction_seconds": 0.5, "pages_per_second": 6.0, "residues": {"{{": 0, "&amp;": 2},
        "rarest_characters": [["<", 3], ["\u4e2d", 1]],
    }
    return {**metrics, **overrides}


SAMPLES = [{"prompt": HOSTILE, "temperature": 0.5, "text": "<img src=x onerror=alert(1)> & more"}]
HISTORY = [{"step": 1, "train_bpc": 2.5, "validation_bpc": 2.4, "elapsed_seconds": 0.5},
           {"step": 2, "train_bpc": 2.0, "validation_bpc": 2.1, "elapsed_seconds": 1.0}]


def test_html_escapes_dump_and_model_text():
    page = render_html(_metrics(), SAMPLES, b"png")
    assert "<script>" not in page
    assert "&lt; U+003C (3), \u4e2d U+4E2D (1)" in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in page


def test_markdown_keeps_samples_in_code_blocks():
    text = render_markdown(_metrics(), SAMPLES)
    assert "```text\n" + HOSTILE + "<img src=x onerror=alert(1)> & more\n```" in text


def test_write_report_files(tmp_path):
    write_report(tmp_path, _metrics(), HISTORY, SAMPLES)
    assert {path.name for path in tmp_path.iterdir()} == {"report.html", "report.md", "metrics.json", "loss.png"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val_bpc"] == 2.1
    assert metrics["unigram_bpc"] == 3.0
    assert metrics["samples"] == SAMPLES
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()


def test_markdown_fence_longer_than_sample_backticks():
    text = render_markdown(_metrics(), [{"prompt": "a", "temperature": 1.0, "text": "```` b"}])
    assert "`````text\na```` b\n`````" in text


def test_model_card_names_reused_model():
    source = "s3://builds/wikichar/enwiki/20160501/model/lstm-1x8-abc"
    assert f"Model reused from | {source}" in render_markdown(_metrics(model_reused_from=source), SAMPLES)
    assert "Model reused from" not in render_markdown(_metrics(model_reused_from=None), SAMPLES)
