"""The character-level LSTM language model, and loading it from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]


class CharLSTM(nn.Module):
    """Embedding, stacked LSTM, dropout and a linear head over the vocabulary.

    forward takes ids of shape (batch, time) and an optional (h, c) state,
    each (layers, batch, hidden_size), and returns logits of shape
    (batch, time, vocabulary_size) with the new state.
    """

    def __init__(self, vocabulary_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float):
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.embedding = nn.Embedding(vocabulary_size, embedding_size)
        # nn.LSTM applies dropout only between layers, so a one-layer model gets it from self.dropout alone.
        self.lstm = nn.LSTM(embedding_size, hidden_size, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, ids: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        embedded = self.dropout(self.embedding(ids))
        output, state = self.lstm(embedded, state)
        return self.head(self.dropout(output)), state


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def build_model(settings: dict[str, Any], vocabulary_size: int) -> CharLSTM:
    return CharLSTM(
        vocabulary_size=vocabulary_size,
        embedding_size=settings["embedding_size"],
        hidden_size=settings["hidden_size"],
        layers=settings["layers"],
        dropout=settings["dropout"],
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU, whatever device it was saved from.

    Checkpoints hold only tensors, numbers, strings, lists and dicts, so they
    load with weights_only=True and never run pickled code.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: Path) -> tuple[CharLSTM, dict[str, Any]]:
    """Return the model stored in a checkpoint (in eval mode, on the CPU) and the checkpoint."""
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint["settings"], checkpoint["vocabulary_size"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, checkpoint
