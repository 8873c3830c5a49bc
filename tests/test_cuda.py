"""The CUDA path: bf16 training on a GPU, and its checkpoint sampled on the CPU. Skipped without a GPU."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from pipeline.model import load_checkpoint
from pipeline.sample import generate, load_sampler
from pipeline.tokens import encode_texts, open_tokens
from pipeline.train import CHECKPOINT, TrainingSettings, train
from pipeline.vocabulary import build_vocabulary

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")

TEXT = "the quick brown fox jumps over the lazy dog. " * 200


def test_gpu_training_samples_on_cpu(tmp_path, monkeypatch):
    vocabulary, _ = build_vocabulary(Counter(TEXT), 1.0)
    encode_texts([TEXT], vocabulary, tmp_path / "tokens.bin")
    tokens = open_tokens(tmp_path / "tokens.bin", vocabulary.size)
    settings = TrainingSettings(embedding_size=16, hidden_size=128, layers=2, dropout=0.0, batch_size=16,
                                sequence_length=64, learning_rate=1e-2, max_steps=300, warmup_steps=10,
                                eval_interval=100, eval_characters=2000, checkpoint_interval=100)
    checkpoint = train(settings, vocabulary, tokens, tokens, tmp_path / "work", device=torch.device("cuda"))
    assert checkpoint["device"].startswith("cuda")
    assert checkpoint["history"][-1]["validation_bpc"] < 0.5

    # Written on the GPU, loaded and sampled on the CPU.
    assert all(tensor.device.type == "cpu" for tensor in load_checkpoint(tmp_path / "work" / CHECKPOINT)["model"].values())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, loaded = load_sampler(tmp_path / "work" / CHECKPOINT)
    assert next(model.parameters()).device.type == "cpu"
    assert generate(model, loaded, "the quick ", 9, temperature=0.1, seed=1)[0] == "brown fox"
