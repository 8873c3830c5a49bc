"""Compare the pipeline's training with a bare torch loop, side by side, and write docs/training-benchmarks.md.

    python scripts/benchmark_training.py                      # throughput of tiny, cpu, gpu-small on the CPU
    python scripts/benchmark_training.py --learning           # also: bits per character after the cpu preset's steps
    python scripts/benchmark_training.py --device cuda --presets gpu-small gpu-large   # on a GPU machine

The data is the bundled dump's training text, encoded once into a token
file. For each preset, rounds alternate the pipeline's `train()` and a bare
loop written plainly in torch: the same model shape, batch, sequence length
and carried recurrent state, with the tokens already in memory as a tensor
and torch's default AdamW. Each round times both on the same number of
steps. The table gives the median characters per second and the median of
the per-round ratios, because the machine's speed drifts between rounds.

On CUDA the table adds three columns: the achieved TFLOP/s, the peak GPU
memory, and the share of step time the pipeline spends building batches.
The TFLOP/s count 6 FLOPs per weight per character for the forward and
backward passes, an estimate that ignores the elementwise work.
NOTE: the CUDA columns have never been run, since no GPU was available.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline import extract  # noqa: E402
from pipeline.tokens import encode_texts, open_tokens  # noqa: E402
from pipeline.train import StreamBatches, TrainingSettings, evaluate_bpc, train  # noqa: E402
from pipeline.vocabulary import build_vocabulary  # noqa: E402

BUNDLED_DUMP = REPO / "mirror" / "enwiki" / "20160501" / "enwiki-20160501-pages-articles-multistream.xml.bz2"
PRESETS = ("tiny", "cpu", "gpu-small", "gpu-large")


def preset_settings(name: str, **overrides) -> TrainingSettings:
    """Return the training settings of configs/{name}.cfg, with `overrides`."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "configs" / f"{name}.cfg")
    section = parser["TrainWikiModel"]
    values = {}
    for field in fields(TrainingSettings):
        if field.name in section:
            default = getattr(TrainingSettings(), field.name)
            values[field.name] = type(default)(section[field.name]) if default is not None else float(section[field.name])
    return TrainingSettings(**{**values, **overrides})


class BareModel(nn.Module):
    """Embedding, nn.LSTM and a linear head: the model shape written without the pipeline."""

    def __init__(self, vocabulary_size: int, settings: TrainingSettings):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, settings.embedding_size)
        self.rnn = nn.LSTM(settings.embedding_size, settings.hidden_size, settings.layers, batch_first=True,
                           dropout=settings.dropout if settings.layers > 1 else 0.0)
        self.dropout = nn.Dropout(settings.dropout)
        self.head = nn.Linear(settings.hidden_size, vocabulary_size)

    def forward(self, ids, state=None):
        output, state = self.rnn(self.dropout(self.embedding(ids)), state)
        return self.head(self.dropout(output)), state


def bare_loop(tokens: torch.Tensor, vocabulary_size: int, settings: TrainingSettings, steps: int,
              device: torch.device) -> tuple[BareModel, float]:
    """Train a BareModel for `steps` steps on contiguous streams; return it and the seconds taken."""
    torch.manual_seed(settings.seed)
    model = BareModel(vocabulary_size, settings).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    data = tokens.to(device)
    stream_length = (len(data) - 1) // settings.batch_size
    starts = torch.arange(settings.batch_size, device=device) * stream_length
    window = torch.arange(settings.sequence_length + 1, device=device)
    steps_per_pass = stream_length // settings.sequence_length
    state = None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for step in range(steps):
        position = step % steps_per_pass
        if position == 0:
            state = None
        windows = data[(starts + position * settings.sequence_length)[:, None] + window]
        with autocast:
            logits, state = model(windows[:, :-1], state)
        state = tuple(tensor.detach() for tensor in state)
        loss = F.cross_entropy(logits.float().reshape(-1, vocabulary_size), windows[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.gradient_clip)
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, time.perf_counter() - started


def pipeline_run(tokens: np.ndarray, validation: np.ndarray, vocabulary, settings: TrainingSettings, steps: int,
                 device: torch.device, work: Path) -> float:
    """Return the seconds that train() takes for `steps` steps, with one short evaluation and one checkpoint."""
    shutil.rmtree(work, ignore_errors=True)
    run_settings = TrainingSettings(**{**asdict(settings), "max_steps": steps, "eval_interval": steps,
                                       "checkpoint_interval": steps, "eval_characters": 2000})
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train(run_settings, vocabulary, tokens, validation, work, device=device, log_interval=max(steps, 1))
    return time.perf_counter() - started


def data_wait_share(tokens: np.ndarray, settings: TrainingSettings, steps: int, device: torch.device,
                    step_seconds: float) -> float:
    """Return the share of step time spent building batches (host side), from the same StreamBatches as train()."""
    batches = StreamBatches(tokens, settings.batch_size, settings.sequence_length, device=device)
    started = time.perf_counter()
    for step in range(steps):
        batches.batch(step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps / step_seconds


def prepare_tokens(folder: Path):
    """Extract the bundled dump, build its vocabulary, and encode train and validation token files."""
    articles = list(extract.iter_articles([BUNDLED_DUMP], extract.ExtractionStats(),
                                          default_site_base="https://en.wikipedia.org/wiki/"))
    texts = [article.text for article in articles]
    vocabulary, _ = build_vocabulary(Counter("".join(texts[5:])), 0.9999)
    encode_texts(texts[5:], vocabulary, folder / "train.bin")
    encode_texts(texts[:5], vocabulary, folder / "validation.bin")
    return vocabulary, open_tokens(folder / "train.bin", vocabulary.size), open_tokens(folder / "validation.bin", vocabulary.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu", "gpu-small"], choices=PRESETS)
    parser.add_argument("--steps", type=int, default=0, help="steps per timed run (default: 300 tiny, 150 cpu, 4 gpu-small on a CPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak, for the TFLOP/s share (default: 989, an H100 or H200 SXM)")
    parser.add_argument("--learning", action="store_true",
                        help="also train the cpu preset for its full step budget both ways and compare bits per character")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "training-benchmarks.md")
    arguments = parser.parse_args()

    device = torch.device(arguments.device)
    torch.set_num_threads(arguments.threads)
    default_steps = {"tiny": 300, "cpu": 150, "gpu-small": 4, "gpu-large": 2} if device.type == "cpu" else \
        {"tiny": 500, "cpu": 500, "gpu-small": 300, "gpu-large": 200}
    lines = [
        "# Training throughput and learning",
        "",
        f"Made by `python scripts/benchmark_training.py {' '.join(sys.argv[1:])}` on {device.type}"
        f"{'' if device.type == 'cuda' else f' with {arguments.threads} torch thread(s)'}, torch {torch.__version__}. "
        f"After one untimed run of each, {arguments.rounds} rounds alternate the pipeline's `train()` and a bare "
        "torch loop on the same steps; the figures are medians over the rounds.",
        "",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        vocabulary, tokens, validation = prepare_tokens(scratch)
        in_memory = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        header = "| preset | parameters | steps per run | pipeline chars/s | bare loop chars/s | ratio (median of rounds) |"
        rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
        if device.type == "cuda":
            header += " TFLOP/s | share of bf16 peak | peak memory GiB | data wait share |"
            rule += " ---: | ---: | ---: | ---: |"
        lines += [header, rule]
        for preset in arguments.presets:
            settings = preset_settings(preset, eval_characters=2000)
            steps = arguments.steps or default_steps[preset]
            characters = steps * settings.batch_size * settings.sequence_length
            pipeline_seconds, bare_seconds = [], []
            # An untimed run of each first: the first call of a torch kernel pays one-time setup costs.
            pipeline_run(tokens, validation, vocabulary, settings, steps, device, scratch / "work")
            bare_loop(in_memory, vocabulary.size, settings, steps, device)
            for round_number in range(arguments.rounds):
                pipeline_seconds.append(pipeline_run(tokens, validation, vocabulary, settings, steps, device,
                                                     scratch / "work"))
                model, seconds = bare_loop(in_memory, vocabulary.size, settings, steps, device)
                bare_seconds.append(seconds)
                print(f"{preset} round {round_number + 1}: pipeline {characters / pipeline_seconds[-1]:,.0f}, "
                      f"bare {characters / seconds:,.0f} chars/s", flush=True)
            parameters = sum(parameter.numel() for parameter in model.parameters())
            ratio = statistics.median(b / p for p, b in zip(pipeline_seconds, bare_seconds))
            row = (f"| {preset} | {parameters:,} | {steps} | {characters / statistics.median(pipeline_seconds):,.0f} | "
                   f"{characters / statistics.median(bare_seconds):,.0f} | {ratio:.2f} |")
            if device.type == "cuda":
                weights = parameters - model.embedding.weight.numel()
                rate = characters / statistics.median(pipeline_seconds)
                tflops = 6 * weights * rate / 1e12
                torch.cuda.reset_peak_memory_stats()
                pipeline_run(tokens, validation, vocabulary, settings, steps, device, scratch / "work")
                memory = torch.cuda.max_memory_allocated() / 2**30
                wait = data_wait_share(tokens, settings, steps, device, statistics.median(pipeline_seconds) / steps)
                row += f" {tflops:.1f} | {tflops / arguments.peak_tflops:.1%} | {memory:.1f} | {wait:.1%} |"
            lines.append(row)

        lines += ["", "A ratio of 1.00 means the pipeline trains as fast as the bare loop; the goal on the CPU is at "
                  "least 0.95. The pipeline's time includes one evaluation of 2,000 characters and one checkpoint "
                  "per run, which the bare loop does not do.", ""]

        if arguments.learning:
            settings = preset_settings("cpu")
            characters = settings.max_steps * settings.batch_size * settings.sequence_length
            pipeline_run(tokens, validation, vocabulary, preset_settings("cpu", eval_characters=2000), settings.max_steps,
                         device, scratch / "learning")
            from pipeline.model import load_model
            pipeline_model, _ = load_model(scratch / "learning" / "checkpoint.pt")
            pipeline_bpc = evaluate_bpc(pipeline_model.to(device), validation, 100_000, settings.sequence_length, device)
            bare_model, _ = bare_loop(in_memory, vocabulary.size, settings, settings.max_steps, device)
            bare_bpc = evaluate_bpc(bare_model, validation, 100_000, settings.sequence_length, device)
            lines += [
                "## Learning",
                "",
                f"The cpu preset ({settings.layers}x{settings.hidden_size} LSTM) trained for {settings.max_steps} steps "
                f"({characters / 1e6:.1f} M characters) on the bundled dump's training text, then evaluated on the "
                "first 100,000 characters of 5 held-out articles:",
                "",
                "| training | validation bits per character |",
                "| --- | ---: |",
                f"| pipeline (warm-up, cosine decay, fused AdamW, non-finite check) | {pipeline_bpc:.3f} |",
                f"| bare loop (constant learning rate, default AdamW) | {bare_bpc:.3f} |",
                "",
            ]
    arguments.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"Wrote {arguments.output}")


if __name__ == "__main__":
    main()
