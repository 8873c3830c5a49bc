"""Write the final report of a build: report.html, report.md, metrics.json and loss.png.

Everything that comes from the dump or the model (titles, samples, skip
reasons) is HTML-escaped in report.html, and the loss curve is embedded in
it, so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

METRICS = "metrics.json"
LOSS_CURVE = "loss.png"


def plot_loss_curve(history: list[dict[str, Any]], unigram_bpc: float) -> bytes:
    """Return a PNG of training and validation bits per character against the unigram baseline."""
    steps = [point["step"] for point in history]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    train_points = [(point["step"], point["train_bpc"]) for point in history if point.get("train_bpc") is not None]
    if train_points:
        axes.plot(*zip(*train_points), marker=".", label="training")
    axes.plot(steps, [point["validation_bpc"] for point in history], marker="o", label="validation")
    axes.axhline(unigram_bpc, color="grey", linestyle="--", label=f"unigram baseline ({unigram_bpc:.2f})")
    axes.set_xlabel("step")
    axes.set_ylabel("bits per character")
    axes.set_title("Loss curve")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _sections(metrics: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the report's tables as (title, [(label, value)]) of plain text: the dataset, extraction and model cards."""
    skipped = ", ".join(f"{reason}: {count:,}" for reason, count in {**metrics["skipped"], **metrics["failed"]}.items()) or "none"
    splits = ("train", "validation", "test")
    # Code points too, since a reader's fonts may lack the rarest characters.
    rarest = ", ".join(f"{character} U+{ord(character):04X} ({count:,})" for character, count in metrics["rarest_characters"])
    residues = ", ".join(f"{marker} {count:,}" for marker, count in metrics["residues"].items())
    dataset = [
        ("Wiki, dump date and source", f"{metrics['wiki']} {metrics['date']} ({metrics['source']})"),
        *((f"Dump file {entry['name']}", f"{entry['size']:,} bytes, {entry['checksum']}") for entry in metrics["dump_files"]),
        ("Pages read", f"{metrics['pages']:,}"),
        ("Pages skipped, by reason", skipped),
        ("Articles (train / validation / test)", " / ".join(f"{metrics['articles'][split]:,}" for split in splits)),
        ("Characters (train / validation / test)", " / ".join(f"{metrics['characters'][split]:,}" for split in splits)),
        ("UTF-8 bytes (train / validation / test)", " / ".join(f"{metrics['text_bytes'][split]:,}" for split in splits)),
        ("Vocabulary", f"{metrics['vocabulary_size']} symbols covering {metrics['vocabulary_coverage']:.4%} of training characters"),
        ("Rarest kept characters", rarest),
    ]
    extraction = [
        ("Extraction", f"{metrics['pages']:,} pages in {metrics['extraction_seconds']:.1f} s of task time, "
                       f"{metrics['pages_per_second']:,.0f} pages/s"),
        ("Markup left in the text (occurrences)", residues),
    ]
    model = [
        ("Settings", metrics["preset"]),
        ("Model", f"{metrics['cell'].upper()}, {metrics['layers']} layers, hidden size {metrics['hidden_size']}, "
                  f"embedding size {metrics['embedding_size']}, {metrics['parameters']:,} parameters"),
        ("Training", f"{metrics['steps']} steps (ended by {metrics['stopped_by']}) in {metrics['training_seconds']:.0f} s "
                     f"on {metrics['device']}, {metrics['characters_per_second']:,.0f} characters/s"),
        *([("Model reused from", f"{metrics['model_reused_from']} (trained on the same tokens with the same settings)")]
          if metrics.get("model_reused_from") else []),
        ("Final training bits per character", f"{metrics['train_bpc']:.3f}" if metrics["train_bpc"] is not None else "n/a"),
        ("Validation bits per character", f"{metrics['val_bpc']:.3f}"),
        ("Unigram baseline", f"{metrics['unigram_bpc']:.3f}"),
    ]
    return [("Dataset", dataset), ("Extraction", extraction), ("Model and training", model)]


def render_markdown(metrics: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    lines = [f"# Character {metrics['cell'].upper()} on {metrics['wiki']} {metrics['date']}", ""]
    for title, rows in _sections(metrics):
        lines += [f"## {title}", "", "| | |", "|---|---|"]
        lines += [f"| {label} | {value.replace('|', '&#124;')} |" for label, value in rows]
        lines.append("")
    lines += ["## Loss curve", "", f"![Loss curve]({LOSS_CURVE})", "", "## Samples", ""]
    for sample in samples:
        # A fence longer than any backtick run in the sample keeps the sample inside it.
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", sample["prompt"] + sample["text"])), default=0))
        lines += [f"**Prompt {sample['prompt']!r}, temperature {sample['temperature']}**", "", f"{fence}text",
                  sample["prompt"] + sample["text"], fence, ""]
    lines += ["## Reproduce", "", "```bash", metrics["command"], "```", ""]
    return "\n".join(lines)


def render_html(metrics: dict[str, Any], samples: list[dict[str, Any]], loss_png: bytes) -> str:
    escape = html.escape
    tables = "\n".join(
        f"<h2>{escape(title)}</h2>\n<table>\n"
        + "\n".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in rows)
        + "\n</table>"
        for title, rows in _sections(metrics)
    )
    blocks = "\n".join(
        f"<figure><figcaption>Prompt <code>{escape(sample['prompt'])}</code>, temperature {sample['temperature']}</figcaption>"
        f"<pre><b>{escape(sample['prompt'])}</b>{escape(sample['text'])}</pre></figure>"
        for sample in samples
    )
    image = base64.b64encode(loss_png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Character {escape(metrics['cell'].upper())} on {escape(metrics['wiki'])} {escape(metrics['date'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.3rem 0.8rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
pre {{ white-space: pre-wrap; background: #f6f6f6; padding: 0.8rem; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>Character {escape(metrics['cell'].upper())} on {escape(metrics['wiki'])} {escape(metrics['date'])}</h1>
{tables}
<h2>Loss curve</h2>
<img alt="Training and validation bits per character by step" src="data:image/png;base64,{image}">
<h2>Samples</h2>
{blocks}
<h2>Reproduce</h2>
<pre>{escape(metrics['command'])}</pre>
</body>
</html>
"""


def write_report(directory: Path, metrics: dict[str, Any], history: list[dict[str, Any]], samples: list[dict[str, Any]]) -> None:
    """Write metrics.json, loss.png, report.md and report.html into `directory`."""
    loss_png = plot_loss_curve(history, metrics["unigram_bpc"])
    (directory / LOSS_CURVE).write_bytes(loss_png)
    (directory / METRICS).write_text(json.dumps({**metrics, "history": history, "samples": samples}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (directory / "report.md").write_text(render_markdown(metrics, samples), encoding="utf-8")
    (directory / "report.html").write_text(render_html(metrics, samples, loss_png), encoding="utf-8")
