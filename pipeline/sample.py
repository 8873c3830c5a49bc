"""Generate text from a trained model, one character at a time."""

from __future__ import annotations

import torch

from pipeline.model import CharLSTM
from pipeline.vocabulary import Vocabulary


@torch.no_grad()
def sample(model: CharLSTM, vocabulary: Vocabulary, prompt: str, length: int, temperature: float, seed: int) -> str:
    """Return `length` characters generated after `prompt` (the prompt itself is not included).

    The prompt primes the LSTM state; characters outside the vocabulary are
    read as the unknown id. Temperature divides the logits: below 1 is more
    conservative, above 1 more varied. The same seed gives the same text.
    """
    if temperature <= 0:
        raise ValueError(f"Invalid temperature {temperature}: expected a positive number such as 0.8.")
    if length < 0:
        raise ValueError(f"Invalid length {length}: expected a number of characters, 0 or more.")
    if not prompt:
        raise ValueError("The prompt is empty: give at least one character to start from.")

    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = torch.as_tensor(vocabulary.encode(prompt), dtype=torch.long, device=device).unsqueeze(0)
    logits, state = model(ids)
    generated = []
    for _ in range(length):
        probabilities = torch.softmax(logits[0, -1].float() / temperature, dim=-1)
        next_id = torch.multinomial(probabilities, 1, generator=generator)
        generated.append(int(next_id))
        logits, state = model(next_id.view(1, 1), state)
    return vocabulary.decode(generated)


def sample_grid(model: CharLSTM, vocabulary: Vocabulary, prompts: list[str], temperatures: list[float],
                length: int, seed: int) -> list[dict]:
    """Return one sample per (prompt, temperature) pair as dicts with prompt, temperature and text."""
    return [
        {"prompt": prompt, "temperature": temperature,
         "text": sample(model, vocabulary, prompt, length, temperature, seed + number)}
        for number, (prompt, temperature) in enumerate((p, t) for p in prompts for t in temperatures)
    ]
