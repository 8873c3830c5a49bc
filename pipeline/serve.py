"""Serve samples from a trained model over HTTP, as a small JSON API built on aiohttp.

    python -m pipeline.serve CHECKPOINT [--host 127.0.0.1] [--port 8000]

    GET  /health   {"status": "ok"}
    GET  /info     the model card: shape, parameters, vocabulary, training steps and bits per character
    POST /sample   {"prime": "The ", "length": 200, "temperature": 0.8, "top_k": 40, "seed": 1,
                    "num_samples": 2, "stop": "\\n\\n"}  ->  {"samples": [...], "seconds": 0.4}

Only "prime" is required. Out-of-range values and malformed JSON get a 400
response whose "error" names the field and the allowed range; bodies over
64 KiB get 413. Requests run in worker threads, at most `--max-concurrent`
at a time, so a long sample does not block /health. The server listens on
127.0.0.1 unless --host gives another interface: it has no authentication.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from aiohttp import web

from pipeline.model import count_parameters
from pipeline.sample import generate, load_sampler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 << 10


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, so that a single request cannot hold the server for long."""

    max_prime: int = 10_000
    max_length: int = 5_000
    max_samples: int = 16
    max_temperature: float = 10.0


def _field(body: dict, name: str, kind: type, default: Any, low: float, high: float) -> Any:
    """Return body[name] (or `default`) checked to be a `kind` in [low, high]; raise ValueError naming the field."""
    value = body.get(name, default)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"Invalid {name}: expected {'a number' if kind is float else 'an integer'}, got {value!r}.")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"Invalid {name}: expected a finite number, got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"Invalid {name} {value}: expected a value from {low:g} to {high:g}.")
    return value


def parse_request(body: Any, limits: Limits, vocabulary_size: int) -> dict[str, Any]:
    """Return the sampling arguments of a /sample body, or raise ValueError naming the first invalid field."""
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object, such as {\"prime\": \"The \"}.")
    unknown = sorted(set(body) - {"prime", "length", "temperature", "top_k", "seed", "num_samples", "stop"})
    if unknown:
        raise ValueError(f"Unknown fields {', '.join(unknown)}: expected prime, length, temperature, top_k, seed, "
                         "num_samples and stop.")
    prime = body.get("prime")
    if not isinstance(prime, str) or not prime:
        raise ValueError("Invalid prime: expected a non-empty string.")
    if len(prime) > limits.max_prime:
        raise ValueError(f"Invalid prime: {len(prime)} characters, at most {limits.max_prime}.")
    stop = body.get("stop")
    if stop is not None and (not isinstance(stop, str) or not stop):
        raise ValueError("Invalid stop: expected a non-empty string, or leave it out.")
    return {
        "prime": prime,
        "length": _field(body, "length", int, 200, 1, limits.max_length),
        "temperature": _field(body, "temperature", float, 0.8, 1e-3, limits.max_temperature),
        "top_k": _field(body, "top_k", int, None, 1, vocabulary_size),
        "seed": _field(body, "seed", int, 1, 0, 2**63 - 1),
        "num_samples": _field(body, "num_samples", int, 1, 1, limits.max_samples),
        "stop": stop,
    }


def model_card(checkpoint: dict[str, Any], parameters: int) -> dict[str, Any]:
    """Return what /info shows: the model's shape and how it was trained."""
    settings = checkpoint["settings"]
    history = checkpoint.get("history") or [{}]
    return {
        "cell": settings.get("cell", "lstm"),
        "layers": settings["layers"],
        "hidden_size": settings["hidden_size"],
        "embedding_size": settings["embedding_size"],
        "parameters": parameters,
        "vocabulary_size": checkpoint["vocabulary_size"],
        "steps": checkpoint["step"],
        "validation_bpc": history[-1].get("validation_bpc"),
        "trained_on": checkpoint.get("device"),
        "settings": settings,
    }


def build_app(checkpoint_path: Path, limits: Limits = Limits(), max_concurrent: int = 4) -> web.Application:
    """Return the aiohttp application serving the model in `checkpoint_path`."""
    model, vocabulary = load_sampler(checkpoint_path)
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    card = model_card(checkpoint, count_parameters(model))
    slots = asyncio.Semaphore(max_concurrent)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def info(request: web.Request) -> web.Response:
        return web.json_response(card)

    async def sample(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError as error:
            return web.json_response({"error": f"The body is not valid JSON: {error}"}, status=400)
        try:
            arguments = parse_request(body, limits, vocabulary.size)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        started = time.monotonic()
        async with slots:
            # Sampling is CPU or GPU work that releases the GIL in torch, so it runs in a thread.
            texts = await asyncio.get_running_loop().run_in_executor(
                None, lambda: generate(model, vocabulary, **arguments))
        return web.json_response({"samples": texts, "seconds": round(time.monotonic() - started, 3)})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes([web.get("/health", health), web.get("/info", info), web.post("/sample", sample)])
    return app


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="model.pt or checkpoint.pt")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--max-concurrent", type=int, default=4, help="samples generated at once (default: 4)")
    parser.add_argument("--max-length", type=int, default=Limits.max_length,
                        help=f"maximum length of a sample in characters (default: {Limits.max_length})")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not arguments.checkpoint.is_file():
        parser.error(f"checkpoint not found: {arguments.checkpoint}")
    if arguments.max_concurrent < 1 or arguments.max_length < 1:
        parser.error("--max-concurrent and --max-length must be 1 or more")
    if arguments.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Listening on %s: the API has no authentication, so anyone who can reach it can use it.",
                    arguments.host)
    app = build_app(arguments.checkpoint, Limits(max_length=arguments.max_length), arguments.max_concurrent)
    web.run_app(app, host=arguments.host, port=arguments.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
