"""Generate text from a trained model, many samples at once.

    python -m pipeline.sample CHECKPOINT --prime "The " --length 300 --temperature 0.8 \
        [--top-k 40] [--seed 1] [--num-samples 4] [--stop "\n\n"]

A checkpoint carries its vocabulary, so it is all that sampling needs. It
loads on the CPU whatever device trained it, and runs on a GPU when one is
present.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

import torch

from pipeline.model import CharRNN, State, load_model
from pipeline.vocabulary import UNKNOWN_ID, Vocabulary

log = logging.getLogger(__name__)


def _layer_weights(model: CharRNN) -> list[tuple[torch.Tensor, ...]]:
    """Return (input weights, recurrent weights, input bias, recurrent bias) of each layer of the model's RNN."""
    return [tuple(getattr(model.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for layer in range(model.rnn.num_layers)]


def _step_by_hand(model: CharRNN, weights: list, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """Advance the model one character with PyTorch's LSTM or GRU equations written out.

    For one character at a time nn.LSTM pays a fixed cost per call that
    dominates on a CPU: a 2x512 LSTM sampled about 5 times faster this way
    (1,550 against 310 characters per second, one thread, batch 1).
    Returns the logits (batch, vocabulary) and the state in nn.LSTM's or nn.GRU's layout.
    """
    x = model.embedding(ids)
    if model.cell == "lstm":
        hidden, cell = state
        new_hidden, new_cell = [], []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
            gates = torch.addmm(b_ih + b_hh, x, w_ih.t()) + hidden[layer] @ w_hh.t()
            input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=1)
            c = torch.sigmoid(forget_gate) * cell[layer] + torch.sigmoid(input_gate) * torch.tanh(candidate)
            x = torch.sigmoid(output_gate) * torch.tanh(c)
            new_hidden.append(x)
            new_cell.append(c)
        return model.head(x), (torch.stack(new_hidden), torch.stack(new_cell))
    new_hidden = []
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        input_part = torch.addmm(b_ih, x, w_ih.t()).chunk(3, dim=1)
        hidden_part = torch.addmm(b_hh, state[layer], w_hh.t()).chunk(3, dim=1)
        reset = torch.sigmoid(input_part[0] + hidden_part[0])
        update = torch.sigmoid(input_part[1] + hidden_part[1])
        candidate = torch.tanh(input_part[2] + reset * hidden_part[2])
        x = (1 - update) * candidate + update * state[layer]
        new_hidden.append(x)
    return model.head(x), torch.stack(new_hidden)


@torch.no_grad()
def generate(model: CharRNN, vocabulary: Vocabulary, prime: str, length: int, temperature: float, seed: int,
             num_samples: int = 1, top_k: Optional[int] = None, stop: Optional[str] = None) -> list[str]:
    """Return `num_samples` texts of up to `length` characters generated after `prime` (not included).

    All samples run as one batch. The prime sets the recurrent state;
    characters outside the vocabulary are read as the unknown id, with a
    warning. Temperature divides the logits: below 1 is more conservative,
    above 1 more varied. `top_k` keeps only the k most likely characters at
    each step. A sample ends early after the first `stop` it generates (the
    stop string is kept). The same seed gives the same texts on the same device.
    """
    if temperature <= 0:
        raise ValueError(f"Invalid temperature {temperature}: expected a positive number such as 0.8.")
    if length < 0:
        raise ValueError(f"Invalid length {length}: expected a number of characters, 0 or more.")
    if num_samples < 1:
        raise ValueError(f"Invalid num_samples {num_samples}: expected 1 or more.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"Invalid top_k {top_k}: expected 1 or more, or none for all characters.")
    if not prime:
        raise ValueError("The prime is empty: give at least one character to start from.")
    unknown = sorted({character for character in prime if vocabulary.encode(character)[0] == UNKNOWN_ID})
    if unknown:
        log.warning("The prime has %d characters outside the vocabulary, read as the unknown symbol: %s",
                    len(unknown), "".join(unknown))

    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = torch.as_tensor(vocabulary.encode(prime), dtype=torch.long, device=device).unsqueeze(0).repeat(num_samples, 1)
    # The prime goes through the module in one call; generation then steps by hand on a CPU.
    logits, state = model(ids)
    logits = logits[:, -1]
    weights = _layer_weights(model) if device.type == "cpu" else None
    generated = torch.empty((num_samples, length), dtype=torch.long, device=device)
    position = -1
    for position in range(length):
        scores = logits.float() / temperature
        if top_k is not None and top_k < scores.size(-1):
            threshold = torch.topk(scores, top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        next_ids = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
        generated[:, position] = next_ids[:, 0]
        if weights is not None:
            logits, state = _step_by_hand(model, weights, next_ids[:, 0], state)
        else:
            step_logits, state = model(next_ids, state)
            logits = step_logits[:, -1]
        if stop and position % 64 == 63:
            # Checking the stop string needs the text on the host, so check in blocks, not every character.
            texts = [vocabulary.decode(row.tolist()) for row in generated[:, : position + 1]]
            if all(stop in text for text in texts):
                break
    texts = [vocabulary.decode(row.tolist()) for row in generated[:, : position + 1]]
    if stop:
        texts = [text[: text.index(stop) + len(stop)] if stop in text else text for text in texts]
    return texts


def sample(model: CharRNN, vocabulary: Vocabulary, prompt: str, length: int, temperature: float, seed: int) -> str:
    """Return one sample of `length` characters after `prompt`; see generate."""
    return generate(model, vocabulary, prompt, length, temperature, seed)[0]


def sample_grid(model: CharRNN, vocabulary: Vocabulary, prompts: list[str], temperatures: list[float],
                length: int, seed: int) -> list[dict]:
    """Return one sample per (prompt, temperature) pair as dicts with prompt, temperature and text."""
    return [
        {"prompt": prompt, "temperature": temperature,
         "text": sample(model, vocabulary, prompt, length, temperature, seed + number)}
        for number, (prompt, temperature) in enumerate((p, t) for p in prompts for t in temperatures)
    ]


def load_sampler(path: Path) -> tuple[CharRNN, Vocabulary]:
    """Return the model of a checkpoint, on a GPU when one is present, and the vocabulary stored with it."""
    model, checkpoint = load_model(path)
    if "vocabulary" not in checkpoint:
        raise ValueError(f"{path} has no vocabulary: it was written by an older version. Train it again.")
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, Vocabulary(tuple(checkpoint["vocabulary"]))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.sample",
                                     description="Generate text from a checkpoint (model.pt or checkpoint.pt).")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--prime", default="\n", help="text that starts every sample (default: a line break)")
    parser.add_argument("--length", type=int, default=500, help="characters per sample (default: 500)")
    parser.add_argument("--temperature", type=float, default=0.8, help="below 1: safer, above 1: more varied (default: 0.8)")
    parser.add_argument("--top-k", type=int, default=None, help="sample only from the k most likely characters")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same samples")
    parser.add_argument("--num-samples", type=int, default=1, help="samples generated together (default: 1)")
    parser.add_argument("--stop", default=None, help="end a sample after this text, such as a blank line")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    if not arguments.checkpoint.is_file():
        parser.error(f"checkpoint not found: {arguments.checkpoint}")
    try:
        model, vocabulary = load_sampler(arguments.checkpoint)
        texts = generate(model, vocabulary, arguments.prime, arguments.length, arguments.temperature, arguments.seed,
                         arguments.num_samples, arguments.top_k, arguments.stop)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for number, text in enumerate(texts):
        if len(texts) > 1:
            print(f"--- sample {number + 1} ---")
        print(arguments.prime + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
