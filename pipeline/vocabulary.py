"""The character vocabulary: the Unicode code points that the model distinguishes.

Characters are counted over the training split. The most frequent ones are
kept until they cover `coverage` of all characters counted (ties broken by
code point, so the result is deterministic); every other character maps to
one unknown id. Id 0 is the unknown id; kept characters follow in order of
decreasing frequency. Characters are code points, never UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

UNKNOWN_ID = 0
UNKNOWN_SYMBOL = "\ufffd"
MAX_CODE_POINT = 0x110000


def count_characters(texts: Iterable[str]) -> Counter:
    """Return how often each character occurs in `texts`."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(text)
    return counts


@dataclass(frozen=True)
class Vocabulary:
    """Kept characters in id order; id 0 is the unknown symbol."""

    characters: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.characters) + 1

    @property
    def fingerprint(self) -> str:
        """sha256 of the id-to-character mapping; checkpoints record it."""
        return hashlib.sha256(json.dumps(self.characters, ensure_ascii=True).encode("ascii")).hexdigest()

    def _lookup(self) -> np.ndarray:
        table = getattr(self, "_table", None)
        if table is None:
            table = np.full(MAX_CODE_POINT, UNKNOWN_ID, dtype=np.int32)
            for index, character in enumerate(self.characters, start=1):
                table[ord(character)] = index
            object.__setattr__(self, "_table", table)
        return table

    def encode(self, text: str) -> np.ndarray:
        """Return the ids of `text` as an int32 array; unknown characters get id 0."""
        code_points = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        return self._lookup()[code_points]

    def decode(self, ids: Iterable[int]) -> str:
        """Return the text of `ids`; the unknown id becomes U+FFFD."""
        symbols = (UNKNOWN_SYMBOL, *self.characters)
        return "".join(symbols[index] for index in ids)

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("unknown_id") != UNKNOWN_ID or not isinstance(data.get("characters"), list):
            raise ValueError(f"{path} is not a vocabulary file written by this pipeline (missing characters or unknown_id).")
        return cls(tuple(data["characters"]))


def build_vocabulary(counts: Counter, coverage: float) -> tuple[Vocabulary, dict[str, Any]]:
    """Keep the most frequent characters that cover `coverage` of `counts`.

    Returns the vocabulary and the JSON document to store: the kept
    characters, all counts, the coverage reached and the characters dropped.
    Raises ValueError for a coverage outside (0, 1] or empty counts.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"Invalid coverage {coverage}: expected a share in (0, 1], such as 0.9999.")
    total = sum(counts.values())
    if total == 0:
        raise ValueError("No characters to count: the training split is empty. Check the shards or lower validation_fraction and test_fraction.")

    ranked = sorted(counts.items(), key=lambda item: (-item[1], ord(item[0])))
    kept: list[str] = []
    covered = 0
    for character, count in ranked:
        if covered / total >= coverage:
            break
        kept.append(character)
        covered += count

    vocabulary = Vocabulary(tuple(kept))
    document = {
        "unknown_id": UNKNOWN_ID,
        "unknown_symbol": UNKNOWN_SYMBOL,
        "size": vocabulary.size,
        "coverage_target": coverage,
        "coverage": covered / total,
        "total_characters": total,
        "distinct_characters": len(counts),
        "kept_characters": len(kept),
        "fingerprint": vocabulary.fingerprint,
        "characters": kept,
        "counts": {character: count for character, count in ranked},
    }
    return vocabulary, document
