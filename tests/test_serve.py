"""The sampling server on 127.0.0.1: good requests, bad ones, and 20 concurrent clients."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import torch
from aiohttp import web

from pipeline.sample import generate, load_sampler
from pipeline.serve import build_app

from conftest import train_small_model

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return train_small_model(tmp_path_factory.mktemp("model"), TEXT)


@pytest.fixture(scope="module")
def server(checkpoint):
    """Run the app on a free port of 127.0.0.1 in a background thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(checkpoint, max_concurrent=4))
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_health_and_info(server):
    assert requests.get(f"{server}/health", timeout=10).json() == {"status": "ok"}
    card = requests.get(f"{server}/info", timeout=10).json()
    assert card["cell"] == "lstm"
    assert card["layers"] == 1
    assert card["steps"] == 200
    assert card["parameters"] > 0
    assert card["validation_bpc"] < 1.0


def test_sample_matches_the_library(server, checkpoint):
    body = {"prime": "the quick ", "length": 30, "temperature": 0.7, "seed": 5, "num_samples": 3, "top_k": 5}
    response = requests.post(f"{server}/sample", json=body, timeout=30)
    assert response.status_code == 200
    model, vocabulary = load_sampler(checkpoint)
    expected = generate(model, vocabulary, "the quick ", 30, temperature=0.7, seed=5, num_samples=3, top_k=5)
    assert response.json()["samples"] == expected


@pytest.mark.parametrize("body, message", [
    ({}, "Invalid prime"),
    ({"prime": ""}, "Invalid prime"),
    ({"prime": "a", "length": 0}, "Invalid length 0: expected a value from 1 to 5000"),
    ({"prime": "a", "length": 10**6}, "Invalid length 1000000"),
    ({"prime": "a", "length": "10"}, "Invalid length: expected an integer"),
    ({"prime": "a", "temperature": 0}, "Invalid temperature 0.0"),
    ({"prime": "a", "temperature": 99}, "Invalid temperature 99.0"),
    ({"prime": "a", "num_samples": 17}, "Invalid num_samples 17"),
    ({"prime": "a", "top_k": 0}, "Invalid top_k 0"),
    ({"prime": "a", "seed": -1}, "Invalid seed -1"),
    ({"prime": "a", "stop": ""}, "Invalid stop"),
    ({"prime": "a", "colour": "red"}, "Unknown fields colour"),
    ({"prime": "x" * 10_001}, "Invalid prime: 10001 characters, at most 10000"),
    (["prime"], "The body must be a JSON object"),
])
def test_invalid_requests_get_400(server, body, message):
    response = requests.post(f"{server}/sample", json=body, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_malformed_json_and_huge_body(server):
    malformed = requests.post(f"{server}/sample", data=b"{not json", timeout=30)
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]
    huge = requests.post(f"{server}/sample", data=b'{"prime": "' + b"a" * 100_000 + b'"}', timeout=30)
    assert huge.status_code == 413


def test_twenty_concurrent_clients(server, checkpoint):
    model, vocabulary = load_sampler(checkpoint)

    def ask(seed: int) -> tuple[int, list[str]]:
        response = requests.post(f"{server}/sample", json={"prime": "the ", "length": 40, "temperature": 1.0,
                                                           "seed": seed}, timeout=120)
        return response.status_code, response.json()["samples"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(ask, range(20)))
    assert [status for status, _ in results] == [200] * 20
    # Each response equals what its seed gives alone: concurrent requests do not mix their state.
    for seed, (_, samples) in enumerate(results):
        assert samples == generate(model, vocabulary, "the ", 40, temperature=1.0, seed=seed)
