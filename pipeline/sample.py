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

from pipeline.model import CharRNN, load_model
from pipeline.vocabulary import UNKNOWN_ID, Vocabulary

log = logging.getLogger(__name__)


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
    logits, state = model(ids)
    generated = torch.empty((num_samples, length), dtype=torch.long, device=device)
    position = -1
    for position in range(length):
        scores = logits[:, -1].float() / temperature
        if top_k is not None and top_k < scores.size(-1):
            threshold = torch.topk(scores, top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        next_ids = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
        generated[:, position] = next_ids[:, 0]
        logits, state = model(next_ids, state)
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
