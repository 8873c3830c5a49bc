"""The character-level recurrent language model (LSTM or GRU), and loading it from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

# An LSTM's state is (h, c); a GRU's is h alone. Each tensor is (layers, batch, hidden_size).
State = Union[tuple[torch.Tensor, torch.Tensor], torch.Tensor]
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class CharRNN(nn.Module):
    """Embedding, a stacked LSTM or GRU, dropout and a linear head over the vocabulary.

    forward takes ids of shape (batch, time) and an optional state, and
    returns logits of shape (batch, time, vocabulary_size) with the new state.
    """

    def __init__(self, vocabulary_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 cell: str = "lstm"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"Invalid cell {cell!r}: expected one of {', '.join(CELLS)}.")
        self.vocabulary_size = vocabulary_size
        self.cell = cell
        self.embedding = nn.Embedding(vocabulary_size, embedding_size)
        # PyTorch applies the recurrent layers' dropout only between layers, so a one-layer model
        # gets dropout from self.dropout alone.
        self.rnn = CELLS[cell](embedding_size, hidden_size, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, ids: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        embedded = self.dropout(self.embedding(ids))
        output, state = self.rnn(embedded, state)
        return self.head(self.dropout(output)), state


def detach_state(state: Optional[State]) -> Optional[State]:
    """Return `state` cut from the graph of the steps before it, so backpropagation stops there."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(tensor.detach() for tensor in state)
    return state.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def build_model(settings: dict[str, Any], vocabulary_size: int) -> CharRNN:
    """Return a new model shaped by training settings (a TrainingSettings as a dict)."""
    return CharRNN(
        vocabulary_size=vocabulary_size,
        embedding_size=settings["embedding_size"],
        hidden_size=settings["hidden_size"],
        layers=settings["layers"],
        dropout=settings["dropout"],
        cell=settings.get("cell", "lstm"),
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU, whatever device it was saved from.

    Checkpoints contain only tensors, numbers, strings, lists and dicts, so
    they load with weights_only=True and never run pickled code.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: Path) -> tuple[CharRNN, dict[str, Any]]:
    """Return the model stored in a checkpoint (in eval mode, on the CPU) and the checkpoint."""
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint["settings"], checkpoint["vocabulary_size"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, checkpoint
