"""The model and its training loop, with real torch on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.model import CharRNN, load_model
from pipeline.sample import _layer_weights, _step_by_hand, generate, load_sampler, main as sample_main, sample
from pipeline.tokens import encode_texts, open_tokens
from pipeline.train import (CHECKPOINT, StreamBatches, TrainingSettings, TrainingStopped, learning_rate_at, train,
                            unigram_bpc)
from pipeline.vocabulary import Vocabulary, build_vocabulary

from conftest import terminate_once_training

REPO = Path(__file__).resolve().parent.parent

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
SMALL = dict(embedding_size=16, hidden_size=64, layers=1, dropout=0.0, batch_size=16, sequence_length=32,
             learning_rate=1e-2, eval_interval=50, eval_characters=1000, checkpoint_interval=50)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _tokens(tmp_path: Path, text: str, name: str):
    vocabulary, document = build_vocabulary(Counter(text), 1.0)
    path = tmp_path / f"{name}.bin"
    encode_texts([text], vocabulary, path)
    return vocabulary, document, open_tokens(path, vocabulary.size)


def test_overfits_tiny_text(tmp_path):
    vocabulary, document, tokens = _tokens(tmp_path, TEXT, "tokens")
    checkpoint = train(TrainingSettings(**SMALL, max_steps=300), vocabulary, tokens, tokens, tmp_path / "work")

    final = checkpoint["history"][-1]["validation_bpc"]
    baseline = unigram_bpc(document["counts"], vocabulary, tokens, 1000)
    assert baseline > 3.0
    assert final < 0.5, f"the model should memorise a repeated sentence, got {final:.2f} bpc"

    model, loaded = load_model(tmp_path / "work" / CHECKPOINT)
    assert loaded["step"] == 300
    assert loaded["stopped_by"] == "max_steps"
    text = sample(model, vocabulary, "the quick ", length=30, temperature=0.1, seed=1)
    assert text.startswith("brown fox")


def test_resume_gives_same_weights(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    # A constant learning rate, because the step budget is raised below and would change a decaying schedule.
    settings = TrainingSettings(**{**SMALL, "dropout": 0.2, "checkpoint_interval": 20}, max_steps=60, schedule="constant")

    straight = train(settings, vocabulary, tokens, tokens, tmp_path / "straight")

    # Stop after the step-40 checkpoint by training a copy with a lower step budget,
    # then continue with the full budget from that checkpoint.
    interrupted_dir = tmp_path / "interrupted"
    first = train(TrainingSettings(**{**SMALL, "dropout": 0.2, "checkpoint_interval": 20}, max_steps=40, schedule="constant"),
                  vocabulary, tokens, tokens, interrupted_dir)
    assert first["step"] == 40
    checkpoint = torch.load(interrupted_dir / CHECKPOINT, weights_only=True)
    checkpoint["settings"]["max_steps"] = 60
    torch.save(checkpoint, interrupted_dir / CHECKPOINT)
    resumed = train(settings, vocabulary, tokens, tokens, interrupted_dir)

    assert resumed["step"] == 60
    for name, weight in straight["model"].items():
        assert torch.equal(weight, resumed["model"][name]), name


def test_time_budget_stops_training(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    checkpoint = train(TrainingSettings(**SMALL, max_steps=10**6, max_minutes=0.02), vocabulary, tokens, tokens, tmp_path / "work")
    assert 0 < checkpoint["step"] < 10**6
    assert checkpoint["stopped_by"] == "max_minutes"
    assert checkpoint["elapsed_seconds"] >= 1.2


@pytest.mark.parametrize("field, value", [("hidden_size", 0), ("dropout", 1.0), ("max_minutes", 0.0), ("learning_rate", -1.0)])
def test_invalid_settings_rejected(tmp_path, field, value):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    with pytest.raises(ValueError, match="Invalid|must be"):
        train(TrainingSettings(**{**SMALL, field: value}), vocabulary, tokens, tokens, tmp_path / "work")


def test_text_shorter_than_a_window_rejected(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, "short", "tokens")
    with pytest.raises(ValueError, match="too few for 16 streams of sequence_length 32"):
        train(TrainingSettings(**SMALL), vocabulary, tokens, tokens, tmp_path / "work")


def test_encoded_articles_joined_by_blank_line(tmp_path):
    vocabulary, _ = build_vocabulary(Counter("ab\n"), 1.0)
    path = tmp_path / "tokens.bin"
    assert encode_texts(["ab", "ba"], vocabulary, path) == 6
    assert vocabulary.decode(np.asarray(open_tokens(path, vocabulary.size))) == "ab\n\nba"


def test_unigram_baseline_of_uniform_text(tmp_path):
    text = "abcd" * 500
    vocabulary, document, tokens = _tokens(tmp_path, text, "tokens")
    # Four equally frequent characters and a smoothed unknown id: just over 2 bits.
    assert unigram_bpc(document["counts"], vocabulary, tokens, 1000) == pytest.approx(2.0, abs=0.01)


# Exact resume after SIGTERM, several processes, non-finite steps, schedules and sampling.

LONG_TEXT = "".join(f"{number} the quick brown fox jumps over the lazy dog; " for number in range(600))


def _write_training_inputs(folder: Path, settings: dict) -> dict[str, Path]:
    """Write the token files, vocabulary.json and settings.json that `python -m pipeline.train` reads."""
    vocabulary, document = build_vocabulary(Counter(LONG_TEXT), 1.0)
    folder.mkdir(parents=True, exist_ok=True)
    encode_texts([LONG_TEXT], vocabulary, folder / "train.bin")
    encode_texts([LONG_TEXT[:4000]], vocabulary, folder / "validation.bin")
    (folder / "vocabulary.json").write_text(json.dumps(document))
    (folder / "settings.json").write_text(json.dumps(settings))
    return {"tokens": folder, "vocabulary": folder / "vocabulary.json", "settings": folder / "settings.json"}


def _train_command(inputs: dict[str, Path], work_dir: Path, processes: int = 1) -> list[str]:
    launcher = [sys.executable, "-m", "pipeline.train"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                    "-m", "pipeline.train"]
    return [*launcher, "--tokens", str(inputs["tokens"]), "--vocabulary", str(inputs["vocabulary"]),
            "--settings", str(inputs["settings"]), "--work-dir", str(work_dir), "--threads", "1"]


RESUME_SETTINGS = {**SMALL, "dropout": 0.2, "batch_size": 8, "max_steps": 400, "checkpoint_interval": 1000,
                   "eval_interval": 100, "warmup_steps": 20}


@pytest.mark.slow
def test_sigterm_checkpoints_then_resumes_exactly(tmp_path):
    inputs = _write_training_inputs(tmp_path / "inputs", RESUME_SETTINGS)
    straight = subprocess.run(_train_command(inputs, tmp_path / "straight"), cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]

    status, log_text = terminate_once_training(_train_command(inputs, tmp_path / "stopped"))
    assert status == 1
    assert "Stopped by SIGTERM at step" in log_text
    # checkpoint_interval is above max_steps, so only SIGTERM can have written this checkpoint.
    interrupted = torch.load(tmp_path / "stopped" / CHECKPOINT, weights_only=True)
    assert 50 <= interrupted["step"] < 400

    resumed = subprocess.run(_train_command(inputs, tmp_path / "stopped"), cwd=REPO, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {tmp_path / 'stopped' / CHECKPOINT} at step {interrupted['step']}" in resumed.stderr
    final = torch.load(tmp_path / "stopped" / CHECKPOINT, weights_only=True)
    reference = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    assert final["step"] == reference["step"] == 400
    for name, weight in reference["model"].items():
        assert torch.equal(weight, final["model"][name]), name


def _run_distributed(command: list[str], work_dir: Path, environment: dict) -> subprocess.CompletedProcess:
    """Run a torchrun command, once more from scratch if a rank was killed by SIGABRT.

    NOTE: one 2-process CPU run in about 30 full test runs had a rank abort
    in gloo ("terminate called without an active exception") within its first
    10 steps. It did not recur in 87 runs of this command alone, with or without
    a busy CPU, and the cause is not known. Any other failure, or a second
    abort, fails the test.
    """
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=environment)
    if result.returncode != 0 and "Signal 6 (SIGABRT)" in result.stderr:
        print(f"A rank aborted; running again. Its log ended:\n{result.stderr[-3000:]}")
        shutil.rmtree(work_dir, ignore_errors=True)
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=environment)
    return result


@pytest.mark.slow
def test_two_processes_match_one_with_both_batches(tmp_path):
    settings = {**SMALL, "dropout": 0.0, "batch_size": 4, "max_steps": 30, "checkpoint_interval": 10, "eval_interval": 10,
                "warmup_steps": 5}
    two_inputs = _write_training_inputs(tmp_path / "two", settings)
    one_inputs = _write_training_inputs(tmp_path / "one", {**settings, "batch_size": 8})
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}

    distributed = _run_distributed(_train_command(two_inputs, tmp_path / "two-work", processes=2), tmp_path / "two-work",
                                   environment)
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    single = subprocess.run(_train_command(one_inputs, tmp_path / "one-work"), cwd=REPO, capture_output=True, text=True,
                            timeout=300, env=environment)
    assert single.returncode == 0, single.stderr[-3000:]

    both = torch.load(tmp_path / "two-work" / CHECKPOINT, weights_only=True)
    alone = torch.load(tmp_path / "one-work" / CHECKPOINT, weights_only=True)
    assert both["world_size"] == 2
    assert len(both["ranks"]) == 2
    assert both["step"] == alone["step"] == 30
    # The same 8 streams: the gradients differ only by the order of floating-point sums.
    for name, weight in alone["model"].items():
        assert torch.allclose(weight, both["model"][name], atol=1e-4), name

    # A checkpoint of 2 processes is rejected by 1, with both counts in the message.
    rejected = subprocess.run(_train_command(two_inputs, tmp_path / "two-work"), cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    assert rejected.returncode == 1
    assert "was written by 2 processes, and this run has 1" in rejected.stderr


def test_streams_carry_position_and_split_ranks():
    tokens = np.arange(1001, dtype=np.uint16)
    batches = StreamBatches(tokens, batch_size=2, sequence_length=10, rank=1, world_size=2)
    assert batches.stream_length == 250
    assert batches.steps_per_pass == 25
    inputs, targets, new_pass = batches.batch(0)
    assert new_pass
    assert inputs[:, 0].tolist() == [500, 750]
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    inputs, _, new_pass = batches.batch(1)
    assert not new_pass
    assert inputs[:, 0].tolist() == [510, 760]
    assert batches.batch(25)[2]


@pytest.mark.parametrize("schedule, step, expected", [
    ("cosine", 0, 0.1), ("cosine", 9, 1.0), ("cosine", 10, 1.0), ("cosine", 55, 0.55), ("cosine", 100, 0.1),
    ("step", 10, 1.0), ("step", 55, 0.1 ** 0.5), ("step", 90, 0.1), ("constant", 99, 1.0),
])
def test_learning_rate_schedule(schedule, step, expected):
    settings = TrainingSettings(learning_rate=1.0, warmup_steps=10, max_steps=100, schedule=schedule,
                                final_learning_rate_ratio=0.1)
    assert learning_rate_at(settings, step) == pytest.approx(expected)


def test_gru_trains_and_samples(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    checkpoint = train(TrainingSettings(**SMALL, cell="gru", max_steps=200, warmup_steps=10), vocabulary, tokens, tokens,
                       tmp_path / "work")
    assert checkpoint["history"][-1]["validation_bpc"] < 0.8
    model, vocabulary_again = load_sampler(tmp_path / "work" / CHECKPOINT)
    assert model.cell == "gru"
    assert generate(model, vocabulary_again, "the quick ", 9, temperature=0.1, seed=1)[0] == "brown fox"


def test_nonfinite_steps_are_skipped_then_stop(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    settings = TrainingSettings(**{**SMALL, "checkpoint_interval": 10, "max_skipped_steps": 5}, max_steps=40, warmup_steps=5)
    train(TrainingSettings(**{**SMALL, "checkpoint_interval": 10, "max_skipped_steps": 5}, max_steps=10, warmup_steps=5),
          vocabulary, tokens, tokens, tmp_path / "work")

    # A NaN weight makes every later gradient NaN: each step is skipped, and the run stops.
    checkpoint = torch.load(tmp_path / "work" / CHECKPOINT, weights_only=True)
    checkpoint["settings"] = {**checkpoint["settings"], "max_steps": 40}
    checkpoint["model"]["head.bias"][0] = float("nan")
    torch.save(checkpoint, tmp_path / "work" / CHECKPOINT)
    before = (tmp_path / "work" / CHECKPOINT).read_bytes()
    with pytest.raises(TrainingStopped, match="5 steps in a row before step .* had non-finite gradients"):
        train(settings, vocabulary, tokens, tokens, tmp_path / "work", log_interval=10)
    assert (tmp_path / "work" / CHECKPOINT).read_bytes() == before, "the last good checkpoint must be kept"


def test_rare_nonfinite_steps_are_skipped(tmp_path):
    text = TEXT + "~" + TEXT
    vocabulary, _, tokens = _tokens(tmp_path, text, "tokens")
    settings = TrainingSettings(**{**SMALL, "batch_size": 2, "eval_interval": 1000}, max_steps=60, warmup_steps=5)
    train(TrainingSettings(**{**SMALL, "batch_size": 2}, max_steps=1, warmup_steps=5), vocabulary, tokens, tokens,
          tmp_path / "work")

    # An infinite embedding for "~", which one window in the pass contains: only the steps that read it are skipped.
    checkpoint = torch.load(tmp_path / "work" / CHECKPOINT, weights_only=True)
    checkpoint["settings"] = {**checkpoint["settings"], "max_steps": 60, "eval_interval": 1000}
    checkpoint["model"]["embedding.weight"][int(vocabulary.encode("~")[0])] = float("inf")
    torch.save(checkpoint, tmp_path / "work" / CHECKPOINT)
    final = train(settings, vocabulary, tokens, tokens, tmp_path / "work", log_interval=10)
    skipped = sum(entry.get("skipped_steps", 0) for entry in final["history"])
    assert 1 <= skipped <= 3
    assert all(torch.isfinite(weight).all() for name, weight in final["model"].items() if name != "embedding.weight")


def test_resume_names_changed_settings_and_vocabulary(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    train(TrainingSettings(**SMALL, max_steps=10), vocabulary, tokens, tokens, tmp_path / "work")
    with pytest.raises(ValueError, match="hidden_size: checkpoint 64, requested 32"):
        train(TrainingSettings(**{**SMALL, "hidden_size": 32}, max_steps=10), vocabulary, tokens, tokens, tmp_path / "work")
    other = Vocabulary(vocabulary.characters[:-1])
    with pytest.raises(ValueError, match=f"the checkpoint's has {vocabulary.size} ids .* this one {other.size} ids"):
        train(TrainingSettings(**SMALL, max_steps=10), other, tokens, tokens, tmp_path / "work")


def test_sampling_is_batched_seeded_and_stops(tmp_path, capsys, caplog):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    train(TrainingSettings(**SMALL, max_steps=200, warmup_steps=10), vocabulary, tokens, tokens, tmp_path / "work")
    model, loaded = load_sampler(tmp_path / "work" / CHECKPOINT)

    first = generate(model, loaded, "the ", 80, temperature=1.0, seed=3, num_samples=4, top_k=3)
    assert len(first) == 4
    assert first == generate(model, loaded, "the ", 80, temperature=1.0, seed=3, num_samples=4, top_k=3)
    assert generate(model, loaded, "the ", 200, temperature=0.1, seed=3, stop="dog.")[0] == "quick brown fox jumps over the lazy dog."
    with caplog.at_level("WARNING", logger="pipeline.sample"):
        generate(model, loaded, "thé ", 5, temperature=1.0, seed=1)
    assert "outside the vocabulary" in caplog.text
    assert "é" in caplog.text

    assert sample_main([str(tmp_path / "work" / CHECKPOINT), "--prime", "the quick ", "--length", "9",
                        "--temperature", "0.1", "--num-samples", "2"]) == 0
    assert capsys.readouterr().out.count("the quick brown fox") == 2
    assert sample_main([str(tmp_path / "work" / CHECKPOINT), "--temperature", "0"]) == 2
    assert "Invalid temperature 0.0" in capsys.readouterr().err


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hand_step_matches_module(cell):
    torch.manual_seed(0)
    model = CharRNN(vocabulary_size=30, embedding_size=8, hidden_size=16, layers=2, dropout=0.0, cell=cell).eval()
    ids = torch.randint(0, 30, (3, 5))
    with torch.no_grad():
        _, state = model(ids)
        expected, expected_state = model(ids[:, :1], state)
        logits, hand_state = _step_by_hand(model, _layer_weights(model), ids[:, 0], state)
    assert torch.allclose(logits, expected[:, 0], atol=1e-5)
    if cell == "gru":
        hand_state, expected_state = (hand_state,), (expected_state,)
    for mine, theirs in zip(hand_state, expected_state):
        assert torch.allclose(mine, theirs, atol=1e-5)
