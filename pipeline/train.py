"""Train the character LSTM on encoded shards, with checkpoints and resume.

The training and validation texts are first encoded once into flat token
files (articles joined by a blank line), which are memory-mapped, so memory
use does not grow with the corpus. Each step draws `batch_size` windows of
`sequence_length + 1` tokens at random offsets:

    tokens   ... t[o] t[o+1] ... t[o+T-1] t[o+T] ...
    input        t[o] ...        t[o+T-1]
    target              t[o+1] ...        t[o+T]

Every window starts from a zero LSTM state. Validation runs over the first
`eval_characters` validation tokens as parallel contiguous streams with the
state carried from chunk to chunk, and is reported in bits per character.

A checkpoint (model, optimizer, step, random generator states, history,
settings and the vocabulary's fingerprint) is written atomically every
`checkpoint_interval` steps. Training started again with a checkpoint in its
work folder continues from it, and on the CPU gives the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.model import CharLSTM, build_model, count_parameters, load_checkpoint
from pipeline.storage import atomic_path
from pipeline.vocabulary import Vocabulary

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
ARTICLE_SEPARATOR = "\n\n"
EVAL_STREAMS = 16
CHECKPOINT_FORMAT = 1

Progress = Callable[[str, Optional[float]], None]


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that changes the trained weights."""

    embedding_size: int = 64
    hidden_size: int = 128
    layers: int = 2
    dropout: float = 0.1
    batch_size: int = 32
    sequence_length: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    gradient_clip: float = 1.0
    max_steps: int = 1000
    max_minutes: Optional[float] = None
    eval_interval: int = 100
    eval_characters: int = 100_000
    checkpoint_interval: int = 100
    seed: int = 1234

    def check(self) -> None:
        """Raise ValueError naming the first setting outside its valid range."""
        positive = ("embedding_size", "hidden_size", "layers", "batch_size", "sequence_length", "max_steps",
                    "eval_interval", "eval_characters", "checkpoint_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"Invalid {name} {getattr(self, name)}: expected a positive integer.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Invalid dropout {self.dropout}: expected a value in [0, 1).")
        if self.learning_rate <= 0 or self.gradient_clip <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate and gradient_clip must be positive and weight_decay not negative.")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"Invalid max_minutes {self.max_minutes}: expected a positive number, or none for no time limit.")


def encode_texts(texts: Iterable[str], vocabulary: Vocabulary, path: Path) -> int:
    """Encode texts, joined by a blank line, into a flat int32 token file; return its length."""
    separator = vocabulary.encode(ARTICLE_SEPARATOR)
    length = 0
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        for number, text in enumerate(texts):
            if number:
                stream.write(separator.tobytes())
                length += len(separator)
            ids = vocabulary.encode(text)
            stream.write(ids.tobytes())
            length += len(ids)
    return length


def open_tokens(path: Path) -> np.ndarray:
    """Memory-map a token file written by encode_texts."""
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.int32)
    return np.memmap(path, dtype=np.int32, mode="r")


def choose_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def configure_threads(threads: Optional[int] = None) -> int:
    """Set torch's CPU thread count, by default to the cores this process may use."""
    count = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(count)
    return count


def _autocast(device: torch.device):
    # bf16 keeps fp32's exponent range, so it needs no loss scaling.
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def draw_batch(tokens: np.ndarray, batch_size: int, sequence_length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs, targets) of shape (batch, time) from random offsets of `tokens`."""
    highest = len(tokens) - sequence_length - 1
    offsets = torch.randint(0, highest + 1, (batch_size,), generator=generator).numpy()
    windows = torch.from_numpy(np.asarray(tokens[offsets[:, None] + np.arange(sequence_length + 1)], dtype=np.int64))
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate_bpc(model: CharLSTM, tokens: np.ndarray, max_characters: int, sequence_length: int, device: torch.device) -> float:
    """Return the model's bits per character on the first `max_characters` predictions of `tokens`."""
    usable = min(len(tokens) - 1, max_characters)
    streams = max(1, min(EVAL_STREAMS, usable // sequence_length))
    length = usable // streams
    if length < 1:
        raise ValueError(f"The validation text has {len(tokens)} characters: too few to evaluate. Raise validation_fraction.")
    ids = torch.from_numpy(np.asarray(tokens[: streams * length + 1], dtype=np.int64))
    inputs = ids[:-1].view(streams, length)
    targets = ids[1:].view(streams, length)

    was_training = model.training
    model.eval()
    state = None
    total_loss = 0.0
    for start in range(0, length, sequence_length):
        x = inputs[:, start:start + sequence_length].to(device)
        y = targets[:, start:start + sequence_length].to(device)
        with _autocast(device):
            logits, state = model(x, state)
        total_loss += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
    model.train(was_training)
    return total_loss / (streams * length) / math.log(2)


def unigram_bpc(counts: dict[str, int], vocabulary: Vocabulary, tokens: np.ndarray, max_characters: int) -> float:
    """Return the bits per character of a unigram model of the training counts on `tokens`.

    Characters outside the vocabulary share the unknown id's probability.
    Add-one smoothing keeps every id's probability above zero.
    """
    frequency = np.ones(vocabulary.size, dtype=np.float64)
    for character, count in counts.items():
        frequency[int(vocabulary.encode(character)[0])] += count
    probability = frequency / frequency.sum()
    evaluated = np.asarray(tokens[1: min(len(tokens), max_characters + 1)])
    return float(-np.log2(probability[evaluated]).mean())


def train(
    settings: TrainingSettings,
    vocabulary: Vocabulary,
    train_tokens: np.ndarray,
    validation_tokens: np.ndarray,
    work_dir: Path,
    device: Optional[torch.device] = None,
    on_progress: Optional[Progress] = None,
    log_interval: int = 50,
) -> dict[str, Any]:
    """Train until `max_steps` or `max_minutes`, resuming from work_dir/checkpoint.pt if present.

    Returns the final checkpoint as a dict; it is also saved in `work_dir`.
    Its "stopped_by" names the budget that ended training: "max_steps" or "max_minutes".
    Raises ValueError when the texts are too short for one window, or when
    the checkpoint in `work_dir` was made with other settings or another
    vocabulary.
    """
    settings.check()
    if len(train_tokens) < settings.sequence_length + 2:
        raise ValueError(
            f"The training text has {len(train_tokens)} characters, fewer than sequence_length + 2 "
            f"({settings.sequence_length + 2}): use a larger dump or a shorter sequence_length."
        )
    device = device or choose_device()
    torch.manual_seed(settings.seed)
    model = build_model(asdict(settings), vocabulary.size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    state = {"step": 0, "elapsed_seconds": 0.0, "history": []}

    checkpoint_path = work_dir / CHECKPOINT
    if checkpoint_path.exists():
        state = _resume(checkpoint_path, settings, vocabulary, model, optimizer, generator)

    parameters = count_parameters(model)
    log.info("Training a %d-layer LSTM, hidden size %d, %d parameters, on %s from step %d; %d training characters",
             settings.layers, settings.hidden_size, parameters, device, state["step"], len(train_tokens))

    step = state["step"]
    history = state["history"]
    elapsed_before = state["elapsed_seconds"]
    started = time.monotonic()
    window_loss, window_steps, window_started = 0.0, 0, time.monotonic()
    characters_per_step = settings.batch_size * settings.sequence_length
    model.train()
    stopped_by = "max_steps"

    while step < settings.max_steps:
        elapsed = elapsed_before + time.monotonic() - started
        if settings.max_minutes is not None and elapsed >= settings.max_minutes * 60:
            log.info("Time budget of %.1f minutes reached at step %d", settings.max_minutes, step)
            stopped_by = "max_minutes"
            break

        inputs, targets = draw_batch(train_tokens, settings.batch_size, settings.sequence_length, generator)
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device):
            logits, _ = model(inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, vocabulary.size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.gradient_clip)
        optimizer.step()
        step += 1
        window_loss += loss.item()
        window_steps += 1

        if step % log_interval == 0 or step == settings.max_steps:
            rate = window_steps * characters_per_step / max(time.monotonic() - window_started, 1e-9)
            message = f"step {step}/{settings.max_steps}, train {window_loss / window_steps / math.log(2):.3f} bpc, {rate:,.0f} chars/s"
            log.info("Training: %s", message)
            if on_progress:
                on_progress(message, step / settings.max_steps)

        if step % settings.eval_interval == 0 or step == settings.max_steps:
            validation = evaluate_bpc(model, validation_tokens, settings.eval_characters, settings.sequence_length, device)
            history.append({
                "step": step,
                "train_bpc": window_loss / max(window_steps, 1) / math.log(2),
                "validation_bpc": validation,
                "elapsed_seconds": elapsed_before + time.monotonic() - started,
            })
            log.info("Validation at step %d: %.3f bpc", step, validation)
            window_loss, window_steps, window_started = 0.0, 0, time.monotonic()

        if step % settings.checkpoint_interval == 0:
            _save(checkpoint_path, model, optimizer, generator, settings, vocabulary, step, history,
                  elapsed_before + time.monotonic() - started)

    elapsed = elapsed_before + time.monotonic() - started
    if not history or history[-1]["step"] != step:
        validation = evaluate_bpc(model, validation_tokens, settings.eval_characters, settings.sequence_length, device)
        history.append({"step": step, "train_bpc": window_loss / max(window_steps, 1) / math.log(2) if window_steps else None,
                        "validation_bpc": validation, "elapsed_seconds": elapsed})
    return _save(checkpoint_path, model, optimizer, generator, settings, vocabulary, step, history, elapsed,
                 extra={"device": str(device), "parameters": parameters, "stopped_by": stopped_by})


def _resume(path: Path, settings: TrainingSettings, vocabulary: Vocabulary, model: CharLSTM,
            optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)
    if checkpoint.get("settings") != asdict(settings):
        raise ValueError(f"{path} was written with other training settings; delete it to start over.")
    if checkpoint.get("vocabulary_fingerprint") != vocabulary.fingerprint:
        raise ValueError(f"{path} was written with another vocabulary; delete it to start over.")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    generator.set_state(checkpoint["batch_generator_state"])
    torch.set_rng_state(checkpoint["torch_rng_state"])
    log.info("Resuming from %s at step %d", path, checkpoint["step"])
    return checkpoint


def _save(path: Path, model: CharLSTM, optimizer: torch.optim.Optimizer, generator: torch.Generator,
          settings: TrainingSettings, vocabulary: Vocabulary, step: int, history: list, elapsed: float,
          extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "batch_generator_state": generator.get_state(),
        "torch_rng_state": torch.get_rng_state(),
        "settings": asdict(settings),
        "vocabulary_size": vocabulary.size,
        "vocabulary_fingerprint": vocabulary.fingerprint,
        "history": history,
        "elapsed_seconds": elapsed,
        **(extra or {}),
    }
    with atomic_path(path) as temporary:
        torch.save(checkpoint, temporary)
    return checkpoint
