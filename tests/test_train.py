"""The model and its training loop, with real torch on the CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.model import load_model
from pipeline.sample import sample
from pipeline.train import CHECKPOINT, TrainingSettings, encode_texts, open_tokens, train, unigram_bpc
from pipeline.vocabulary import build_vocabulary

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
    return vocabulary, document, open_tokens(path)


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
    settings = TrainingSettings(**{**SMALL, "dropout": 0.2, "checkpoint_interval": 20}, max_steps=60)

    straight = train(settings, vocabulary, tokens, tokens, tmp_path / "straight")

    # Stop after the step-40 checkpoint by training a copy with a lower step budget,
    # then continue with the full budget from that checkpoint.
    interrupted_dir = tmp_path / "interrupted"
    first = train(TrainingSettings(**{**SMALL, "dropout": 0.2, "checkpoint_interval": 20}, max_steps=40),
                  vocabulary, tokens, tokens, interrupted_dir)
    assert first["step"] == 40
    checkpoint = torch.load(interrupted_dir / CHECKPOINT, weights_only=True)
    checkpoint["settings"]["max_steps"] = 60
    torch.save(checkpoint, interrupted_dir / CHECKPOINT)
    resumed = train(settings, vocabulary, tokens, tokens, interrupted_dir)

    assert resumed["step"] == 60
    for name, weight in straight["model"].items():
        assert torch.equal(weight, resumed["model"][name]), name


def test_resume_rejects_other_settings(tmp_path):
    vocabulary, _, tokens = _tokens(tmp_path, TEXT, "tokens")
    train(TrainingSettings(**SMALL, max_steps=10), vocabulary, tokens, tokens, tmp_path / "work")
    with pytest.raises(ValueError, match="other training settings"):
        train(TrainingSettings(**{**SMALL, "hidden_size": 32}, max_steps=10), vocabulary, tokens, tokens, tmp_path / "work")


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
    with pytest.raises(ValueError, match="fewer than sequence_length"):
        train(TrainingSettings(**SMALL), vocabulary, tokens, tokens, tmp_path / "work")


def test_encoded_articles_joined_by_blank_line(tmp_path):
    vocabulary, _ = build_vocabulary(Counter("ab\n"), 1.0)
    path = tmp_path / "tokens.bin"
    assert encode_texts(["ab", "ba"], vocabulary, path) == 6
    assert vocabulary.decode(np.asarray(open_tokens(path))) == "ab\n\nba"


def test_unigram_baseline_of_uniform_text(tmp_path):
    text = "abcd" * 500
    vocabulary, document, tokens = _tokens(tmp_path, text, "tokens")
    # Four equally frequent characters and a smoothed unknown id: just over 2 bits.
    assert unigram_bpc(document["counts"], vocabulary, tokens, 1000) == pytest.approx(2.0, abs=0.01)
