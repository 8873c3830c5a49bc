"""Train the character model on token files, with exact resume, on a CPU, a GPU or several of either.

Batches come from `batch_size` contiguous streams over the memory-mapped
training tokens (truncated backpropagation through time):

    tokens    [stream 0 ..........][stream 1 ..........] ... [stream B-1 ........]
    step s    inputs  t[start + s*T : start + (s+1)*T]      of every stream
              targets the same window shifted by one token

The recurrent state at the end of one step is the start state of the next,
detached from the graph. So the model learns from context longer than
`sequence_length` at no extra cost per step, as char-rnn did. A window
that started from a zero state every time would never see more than
`sequence_length` characters of context. When the streams reach their ends,
a new pass starts from a zero state. The data position is a function of the
step, so a resumed run reads exactly the batches that the stopped run would
have read.

Run under `torchrun --nproc-per-node N -m pipeline.train ...`, each process
(rank) reads its own `batch_size` streams and DistributedDataParallel
averages the gradients (gloo on the CPU, nccl on GPUs). Rank 0 evaluates,
logs and writes checkpoints.

A checkpoint (model, optimizer, step, learning rate, random generator
states and recurrent state of every rank, history, settings and the
vocabulary) is written atomically every `checkpoint_interval` steps, and
when the process gets SIGTERM. Training started again with a checkpoint in
its work folder continues from it, and on the CPU gives bit-identical
weights to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from pipeline.model import CELLS, CharRNN, State, build_model, count_parameters, detach_state, load_checkpoint
from pipeline.storage import atomic_path, read_json
from pipeline.tokens import open_tokens
from pipeline.vocabulary import Vocabulary

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EVAL_STREAMS = 16
CHECKPOINT_FORMAT = 2
SCHEDULES = ("constant", "cosine", "step")
PRECISIONS = ("auto", "fp32", "bf16")

Progress = Callable[[str, Optional[float]], None]


class TrainingStopped(RuntimeError):
    """Training stopped before its budget: SIGTERM (with a checkpoint written) or repeated non-finite losses."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that changes the trained weights. `batch_size` counts the streams of one process."""

    cell: str = "lstm"
    embedding_size: int = 64
    hidden_size: int = 128
    layers: int = 2
    dropout: float = 0.1
    batch_size: int = 32
    sequence_length: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    gradient_clip: float = 1.0
    schedule: str = "cosine"
    warmup_steps: int = 100
    final_learning_rate_ratio: float = 0.1
    precision: str = "auto"
    max_steps: int = 1000
    max_minutes: Optional[float] = None
    eval_interval: int = 100
    eval_characters: int = 100_000
    checkpoint_interval: int = 100
    max_skipped_steps: int = 10
    seed: int = 1234

    def check(self) -> None:
        """Raise ValueError naming the first setting outside its valid range."""
        positive = ("embedding_size", "hidden_size", "layers", "batch_size", "sequence_length", "max_steps",
                    "eval_interval", "eval_characters", "checkpoint_interval", "max_skipped_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"Invalid {name} {getattr(self, name)}: expected a positive integer.")
        choices = {"cell": tuple(CELLS), "schedule": SCHEDULES, "precision": PRECISIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Invalid {name} {getattr(self, name)!r}: expected one of {', '.join(allowed)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Invalid dropout {self.dropout}: expected a value in [0, 1).")
        if self.learning_rate <= 0 or self.gradient_clip <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate and gradient_clip must be positive and weight_decay not negative.")
        if self.warmup_steps < 0:
            raise ValueError(f"Invalid warmup_steps {self.warmup_steps}: expected 0 or more.")
        if not 0.0 <= self.final_learning_rate_ratio <= 1.0:
            raise ValueError(f"Invalid final_learning_rate_ratio {self.final_learning_rate_ratio}: expected a value in [0, 1].")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"Invalid max_minutes {self.max_minutes}: expected a positive number, or none for no time limit.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainingSettings":
        """Return settings from a dict such as asdict() gives; unknown keys raise ValueError."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training settings: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        return cls(**values)


def learning_rate_at(settings: TrainingSettings, step: int) -> float:
    """Return the learning rate of 0-based `step`: a linear warm-up, then the schedule.

    "cosine" falls from learning_rate to learning_rate * final_learning_rate_ratio
    along half a cosine; "step" drops to sqrt(final ratio) of it at half of the
    steps after warm-up and to the final ratio at three quarters; "constant" keeps it.
    """
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.max_steps - settings.warmup_steps)
    ratio = settings.final_learning_rate_ratio
    if settings.schedule == "cosine":
        factor = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    elif settings.schedule == "step" and progress < 0.5:
        factor = 1.0
    elif settings.schedule == "step" and progress < 0.75:
        factor = math.sqrt(ratio)
    elif settings.schedule == "step":
        factor = ratio
    else:
        factor = 1.0
    return settings.learning_rate * factor


def choose_device() -> torch.device:
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def configure_threads(threads: Optional[int] = None) -> int:
    """Set torch's CPU thread count, by default to the cores this process may use divided among local ranks."""
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    count = threads or max(1, len(os.sched_getaffinity(0)) // local_ranks)
    torch.set_num_threads(count)
    return count


def _autocast(device: torch.device, precision: str):
    # bf16 keeps fp32's exponent range, so it needs no loss scaling.
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class StreamBatches:
    """Batches of `batch_size` contiguous streams over a token array, for one rank of `world_size`.

    batch(step) copies only the batch's windows out of the (memory-mapped)
    tokens. Its third value is True at the first step of a pass, where the
    recurrent state must start from zero.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, sequence_length: int, rank: int = 0, world_size: int = 1,
                 device: torch.device = torch.device("cpu")):
        streams = batch_size * world_size
        self.stream_length = (len(tokens) - 1) // streams
        if self.stream_length < sequence_length:
            raise ValueError(
                f"The training text has {len(tokens)} characters: too few for {streams} streams of "
                f"sequence_length {sequence_length} + 1. Use a larger dump, a smaller batch_size or a shorter "
                "sequence_length."
            )
        self.tokens = tokens
        self.sequence_length = sequence_length
        self.steps_per_pass = self.stream_length // sequence_length
        self.starts = (rank * batch_size + np.arange(batch_size)) * self.stream_length
        self.window = np.arange(sequence_length + 1)
        self.device = device

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        position = step % self.steps_per_pass
        offsets = self.starts + position * self.sequence_length
        windows = torch.from_numpy(np.asarray(self.tokens[offsets[:, None] + self.window], dtype=np.int64))
        if self.device.type == "cuda":
            # Pinned host memory lets the copy run asynchronously with the previous step's kernels.
            windows = windows.pin_memory().to(self.device, non_blocking=True)
        return windows[:, :-1], windows[:, 1:], position == 0


@torch.no_grad()
def evaluate_bpc(model: CharRNN, tokens: np.ndarray, max_characters: int, sequence_length: int, device: torch.device,
                 precision: str = "auto") -> float:
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
    total_loss = torch.zeros((), device=device)
    for start in range(0, length, sequence_length):
        x = inputs[:, start:start + sequence_length].to(device)
        y = targets[:, start:start + sequence_length].to(device)
        with _autocast(device, precision):
            logits, state = model(x, state)
        total_loss += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
    model.train(was_training)
    return total_loss.item() / (streams * length) / math.log(2)


def unigram_bpc(counts: dict[str, int], vocabulary: Vocabulary, tokens: np.ndarray, max_characters: int) -> float:
    """Return the bits per character of a unigram model of the training counts on `tokens`.

    Characters outside the vocabulary share the unknown id's probability.
    Add-one smoothing keeps every id's probability above zero.
    """
    frequency = np.ones(vocabulary.size, dtype=np.float64)
    for character, count in counts.items():
        frequency[int(vocabulary.encode(character)[0])] += count
    probability = frequency / frequency.sum()
    evaluated = np.asarray(tokens[1: min(len(tokens), max_characters + 1)], dtype=np.int64)
    return float(-np.log2(probability[evaluated]).mean())


@dataclass
class _Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, value: Any) -> list[Any]:
        """Return every rank's `value`, in rank order (on every rank)."""
        if self.world_size == 1:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def any(self, flag: bool, device: torch.device) -> bool:
        """Return True on every rank when `flag` is True on any rank."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def _distributed(device: torch.device) -> _Distributed:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return _Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


class _StopSignal:
    """Record SIGTERM instead of dying at once, so the loop can write a checkpoint first."""

    def __init__(self):
        self.received = False
        self._previous = None

    def __enter__(self) -> "_StopSignal":
        # Signal handlers can be set only in the main thread; elsewhere SIGTERM keeps its default action.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = True

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


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
    A step whose gradients are not finite is skipped (the weights and the
    optimizer stay as they were, and the recurrent state starts again from
    zero); `max_skipped_steps` skipped steps in a row raise TrainingStopped,
    with the last checkpoint kept. SIGTERM writes a checkpoint and raises
    TrainingStopped. Raises ValueError when the texts are too short, or when
    the checkpoint in `work_dir` was made with other settings, another
    vocabulary or another number of processes.
    """
    settings.check()
    device = device or choose_device()
    ranks = _distributed(device)
    batches = StreamBatches(train_tokens, settings.batch_size, settings.sequence_length, ranks.rank, ranks.world_size,
                            device)

    torch.manual_seed(settings.seed)
    raw_model = build_model(asdict(settings), vocabulary.size).to(device)
    # Each rank gets its own dropout masks; the initial weights are the same everywhere (seeded above).
    torch.manual_seed(settings.seed + ranks.rank)
    model: torch.nn.Module = raw_model
    if ranks.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    # The fused AdamW skips a step on device when found_inf is 1, the mechanism GradScaler uses, so a
    # non-finite gradient needs no host sync. NOTE: found_inf is an attribute that torch's fused optimizers
    # read, not a documented argument; a torch release that drops it would fail the non-finite test.
    optimizer = torch.optim.AdamW(raw_model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay,
                                  fused=True)
    state: dict[str, Any] = {"step": 0, "elapsed_seconds": 0.0, "history": []}
    hidden: Optional[State] = None

    checkpoint_path = work_dir / CHECKPOINT
    if checkpoint_path.exists():
        state = _resume(checkpoint_path, settings, vocabulary, raw_model, optimizer, ranks)
        hidden = _restore_hidden(state["ranks"][ranks.rank]["hidden_state"], raw_model.cell, device)

    parameters = count_parameters(raw_model)
    if ranks.is_main:
        log.info("Training a %d-layer %s, hidden size %d, %d parameters, on %s x %d from step %d; %d training characters, "
                 "%d steps per pass over them", settings.layers, settings.cell.upper(), settings.hidden_size, parameters,
                 device, ranks.world_size, state["step"], len(train_tokens), batches.steps_per_pass)

    step = state["step"]
    history = state["history"]
    elapsed_before = state["elapsed_seconds"]
    started = time.monotonic()
    characters_per_step = settings.batch_size * settings.sequence_length * ranks.world_size
    window_loss = torch.zeros((), device=device)
    window_skipped = torch.zeros((), device=device)
    skipped_in_a_row = torch.zeros((), device=device)
    longest_skipped_run = torch.zeros((), device=device)
    window_steps, window_started = 0, time.monotonic()
    stopped_by = "max_steps"
    model.train()

    with _StopSignal() as stop_signal:
        while step < settings.max_steps:
            # Stop checks need agreement between ranks, so several processes check only at logging intervals.
            if ranks.world_size == 1 or step % log_interval == 0:
                out_of_time = settings.max_minutes is not None and \
                    elapsed_before + time.monotonic() - started >= settings.max_minutes * 60
                if ranks.any(out_of_time, device):
                    log.info("Time budget of %.1f minutes reached at step %d", settings.max_minutes, step)
                    stopped_by = "max_minutes"
                    break
                if ranks.any(stop_signal.received, device):
                    _save(checkpoint_path, raw_model, optimizer, settings, vocabulary, step, history,
                          elapsed_before + time.monotonic() - started, hidden, ranks)
                    raise TrainingStopped(f"Stopped by SIGTERM at step {step}; the checkpoint in {checkpoint_path} "
                                          "was written. Run the same command again to resume.")

            inputs, targets, new_pass = batches.batch(step)
            if new_pass:
                hidden = None
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(settings, step)
            with _autocast(device, settings.precision):
                logits, hidden = model(inputs, hidden)
            hidden = detach_state(hidden)
            loss = F.cross_entropy(logits.float().reshape(-1, vocabulary.size), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), settings.gradient_clip, foreach=True)

            # All on the device: gradients are averaged across ranks, so every rank skips the same steps.
            found_inf = (~torch.isfinite(norm)).float()
            optimizer.found_inf = found_inf
            optimizer.grad_scale = None
            optimizer.step()
            hidden = _zero_where(hidden, found_inf)
            window_loss += torch.where(found_inf.bool(), torch.zeros_like(loss), loss.detach())
            window_skipped += found_inf
            skipped_in_a_row = (skipped_in_a_row + 1) * found_inf
            longest_skipped_run = torch.maximum(longest_skipped_run, skipped_in_a_row)
            step += 1
            window_steps += 1

            if step % log_interval == 0 or step == settings.max_steps:
                # The only host syncs of the loop outside evaluation and checkpoints.
                skipped = int(window_skipped.item())
                if int(longest_skipped_run.item()) >= settings.max_skipped_steps:
                    raise TrainingStopped(
                        f"{settings.max_skipped_steps} steps in a row before step {step} had non-finite gradients "
                        f"and were skipped. The last good checkpoint is kept in {checkpoint_path}. Lower "
                        "learning_rate or gradient_clip and run again."
                    )
                trained = max(window_steps - skipped, 1)
                rate = window_steps * characters_per_step / max(time.monotonic() - window_started, 1e-9)
                message = (f"step {step}/{settings.max_steps}, train {window_loss.item() / trained / math.log(2):.3f} bpc, "
                           f"{rate:,.0f} chars/s" + (f", {skipped} non-finite steps skipped" if skipped else ""))
                if ranks.is_main:
                    log.info("Training: %s", message)
                    if on_progress:
                        on_progress(message, step / settings.max_steps)

            if step % settings.eval_interval == 0 or step == settings.max_steps:
                skipped = int(window_skipped.item())
                trained = max(window_steps - skipped, 1)
                history_entry = {"step": step, "train_bpc": window_loss.item() / trained / math.log(2),
                                 "learning_rate": learning_rate_at(settings, step - 1), "skipped_steps": skipped}
                if ranks.is_main:
                    validation = evaluate_bpc(raw_model, validation_tokens, settings.eval_characters,
                                              settings.sequence_length, device, settings.precision)
                    history.append({**history_entry, "validation_bpc": validation,
                                    "elapsed_seconds": elapsed_before + time.monotonic() - started})
                    log.info("Validation at step %d: %.3f bpc", step, validation)
                window_loss.zero_()
                window_skipped.zero_()
                longest_skipped_run.zero_()
                window_steps, window_started = 0, time.monotonic()

            if step % settings.checkpoint_interval == 0:
                _save(checkpoint_path, raw_model, optimizer, settings, vocabulary, step, history,
                      elapsed_before + time.monotonic() - started, hidden, ranks)

    elapsed = elapsed_before + time.monotonic() - started
    if ranks.is_main and (not history or history[-1]["step"] != step):
        validation = evaluate_bpc(raw_model, validation_tokens, settings.eval_characters, settings.sequence_length,
                                  device, settings.precision)
        skipped = int(window_skipped.item())
        trained = window_steps - skipped
        history.append({"step": step, "train_bpc": window_loss.item() / trained / math.log(2) if trained else None,
                        "learning_rate": learning_rate_at(settings, max(step - 1, 0)), "skipped_steps": skipped,
                        "validation_bpc": validation, "elapsed_seconds": elapsed})
    return _save(checkpoint_path, raw_model, optimizer, settings, vocabulary, step, history, elapsed, hidden, ranks,
                 extra={"device": str(device), "parameters": parameters, "stopped_by": stopped_by})


def _zero_where(hidden: Optional[State], found_inf: torch.Tensor) -> Optional[State]:
    """Return the recurrent state, or zeros where the step was skipped, since its state may be NaN."""
    if hidden is None:
        return None
    skipped = found_inf.bool()
    if isinstance(hidden, tuple):
        return tuple(torch.where(skipped, torch.zeros_like(tensor), tensor) for tensor in hidden)
    return torch.where(skipped, torch.zeros_like(hidden), hidden)


def _restore_hidden(tensors: list[torch.Tensor], cell: str, device: torch.device) -> Optional[State]:
    if not tensors:
        return None
    moved = [tensor.to(device) for tensor in tensors]
    return tuple(moved) if cell == "lstm" else moved[0]


def _differences(saved: dict[str, Any], requested: dict[str, Any]) -> str:
    keys = sorted(set(saved) | set(requested))
    return "; ".join(f"{key}: checkpoint {saved.get(key)!r}, requested {requested.get(key)!r}"
                     for key in keys if saved.get(key) != requested.get(key))


def _resume(path: Path, settings: TrainingSettings, vocabulary: Vocabulary, model: CharRNN,
            optimizer: torch.optim.Optimizer, ranks: _Distributed) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {checkpoint.get('format')}, this version writes "
                         f"{CHECKPOINT_FORMAT}: delete it to start over.")
    if checkpoint["settings"] != asdict(settings):
        raise ValueError(f"{path} was written with other training settings ({_differences(checkpoint['settings'], asdict(settings))}); "
                         "delete it to start over, or train with its settings.")
    if checkpoint["vocabulary_fingerprint"] != vocabulary.fingerprint:
        raise ValueError(
            f"{path} was written with another vocabulary: the checkpoint's has {checkpoint['vocabulary_size']} ids "
            f"(fingerprint {checkpoint['vocabulary_fingerprint'][:12]}), this one {vocabulary.size} ids "
            f"(fingerprint {vocabulary.fingerprint[:12]}). Delete the checkpoint to start over.")
    if checkpoint["world_size"] != ranks.world_size:
        raise ValueError(f"{path} was written by {checkpoint['world_size']} processes, and this run has "
                         f"{ranks.world_size}: resume with the same number, or delete it to start over.")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    own = checkpoint["ranks"][ranks.rank]
    torch.set_rng_state(own["torch_rng_state"])
    if torch.cuda.is_available() and own.get("cuda_rng_state") is not None:
        torch.cuda.set_rng_state(own["cuda_rng_state"])
    if ranks.is_main:
        log.info("Resuming from %s at step %d", path, checkpoint["step"])
    return checkpoint


def _save(path: Path, model: CharRNN, optimizer: torch.optim.Optimizer, settings: TrainingSettings,
          vocabulary: Vocabulary, step: int, history: list, elapsed: float, hidden: Optional[State],
          ranks: _Distributed, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Write the checkpoint from rank 0, with every rank's random and recurrent state; return it (on every rank)."""
    own = {
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "hidden_state": [] if hidden is None else [tensor.detach().cpu() for tensor in
                                                    (hidden if isinstance(hidden, tuple) else (hidden,))],
    }
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        # The learning rate is a function of the step, so the step is the scheduler's whole state.
        "learning_rate": learning_rate_at(settings, max(step - 1, 0)),
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "world_size": ranks.world_size,
        "ranks": ranks.gather(own),
        "settings": asdict(settings),
        "vocabulary": list(vocabulary.characters),
        "vocabulary_size": vocabulary.size,
        "vocabulary_fingerprint": vocabulary.fingerprint,
        "history": history,
        "elapsed_seconds": elapsed,
        **(extra or {}),
    }
    if ranks.is_main:
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)
    return checkpoint


def main(argv: Optional[list[str]] = None) -> int:
    """Train from the command line, as one process or one rank under torchrun."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.train",
        description="Train the character model on token files written by the tokens stage. "
                    "Run it under `torchrun --nproc-per-node N` for several processes.")
    parser.add_argument("--tokens", type=Path, required=True,
                        help="folder with train.bin and validation.bin (the tokens stage's output)")
    parser.add_argument("--vocabulary", type=Path, required=True, help="vocabulary.json")
    parser.add_argument("--settings", type=Path, required=True, help="JSON file of training settings")
    parser.add_argument("--work-dir", type=Path, required=True, help="folder for checkpoint.pt")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per process (0: the cores divided among processes)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    vocabulary = Vocabulary.load(arguments.vocabulary)
    settings = TrainingSettings.from_dict(read_json(arguments.settings))
    configure_threads(arguments.threads or None)
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        train(settings, vocabulary, open_tokens(arguments.tokens / "train.bin", vocabulary.size),
              open_tokens(arguments.tokens / "validation.bin", vocabulary.size), arguments.work_dir)
        if dist.is_initialized():
            # Rank 0 may still be writing the final checkpoint. A rank that tears the group down
            # before the others are done makes gloo abort the process.
            dist.barrier()
    except (TrainingStopped, ValueError) as error:
        log.error("%s", error)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
