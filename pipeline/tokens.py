"""Encode texts into flat token files that training memory-maps.

A token file is the vocabulary ids of the texts, joined by a blank line, as
one flat array of unsigned 16-bit integers (32-bit where the vocabulary has
more than 65,535 ids). Training reads it through numpy.memmap, so the data
loader never decodes Parquet or text, and memory use does not grow with the
corpus: only the rows of a batch are copied out of the file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.storage import atomic_path
from pipeline.vocabulary import Vocabulary

log = logging.getLogger(__name__)

ARTICLE_SEPARATOR = "\n\n"


def token_dtype(vocabulary_size: int) -> np.dtype:
    """Return the smallest unsigned integer type that can represent every id of a vocabulary."""
    return np.dtype(np.uint16) if vocabulary_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def encode_texts(texts: Iterable[str], vocabulary: Vocabulary, path: Path, report_every: float = 30.0) -> int:
    """Encode texts, joined by a blank line, into a flat token file of token_dtype; return its length in tokens."""
    dtype = token_dtype(vocabulary.size)
    separator = vocabulary.encode(ARTICLE_SEPARATOR).astype(dtype)
    length = 0
    started = last_report = time.monotonic()
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        for number, text in enumerate(texts):
            if number:
                stream.write(separator.tobytes())
                length += len(separator)
            ids = vocabulary.encode(text).astype(dtype)
            stream.write(ids.tobytes())
            length += len(ids)
            now = time.monotonic()
            if now - last_report >= report_every:
                last_report = now
                log.info("Encoding %s: %d texts, %.1f M tokens, %.1f M tokens/s", path.name, number + 1, length / 1e6,
                         length / 1e6 / (now - started))
    return length


def open_tokens(path: Path, vocabulary_size: int) -> np.ndarray:
    """Memory-map a token file written by encode_texts for a vocabulary of `vocabulary_size` ids."""
    dtype = token_dtype(vocabulary_size)
    if path.stat().st_size % dtype.itemsize:
        raise ValueError(f"{path} has {path.stat().st_size} bytes, not a whole number of {dtype} tokens: "
                         "it was written for another vocabulary. Delete it to encode the texts again.")
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")
