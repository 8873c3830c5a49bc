"""The CUDA path: bf16 training on a GPU, and its checkpoint sampled on the CPU. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from pipeline.model import load_checkpoint
from pipeline.sample import generate, load_sampler

from conftest import train_small_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")

TEXT = "the quick brown fox jumps over the lazy dog. " * 200


def test_gpu_training_samples_on_cpu(tmp_path, monkeypatch):
    path = train_small_model(tmp_path, TEXT, device=torch.device("cuda"), hidden_size=128, layers=2, sequence_length=64,
                             max_steps=300)
    checkpoint = load_checkpoint(path)
    assert checkpoint["device"].startswith("cuda")
    assert checkpoint["history"][-1]["validation_bpc"] < 0.5

    # Written on the GPU, loaded and sampled on the CPU.
    assert all(tensor.device.type == "cpu" for tensor in checkpoint["model"].values())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, loaded = load_sampler(path)
    assert next(model.parameters()).device.type == "cpu"
    assert generate(model, loaded, "the quick ", 9, temperature=0.1, seed=1)[0] == "brown fox"
