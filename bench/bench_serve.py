"""Serving throughput: 1 streaming client vs many, against `r1zero serve` on loopback.

    python bench/bench_serve.py [--model DIR] [--clients 32] [--seconds 20] [--max-tokens 64]

Starts the server as a subprocess (default model: a fresh tiny model built like recipes/tiny-zero.yaml),
then runs two phases of the same length: one client, then `--clients` concurrent clients, each
sending streaming chat requests back to back (httpx, SSE parsed by hand: the official client's
per-chunk parsing would load the same 2 cores the server runs on). Prints per phase: requests,
errors, p50/p99 latency (request to last token), p50 time to first token, and aggregate completion
tokens/s (usage from the server, over the phase's wall time), then the ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(out: Path) -> Path:
    """A tiny model of the default build shape (the embedded recipe's), with random weights."""
    from dataclasses import asdict

    from r1zero.config import BuildConfig
    from r1zero.models.build import ModelShape, build_model

    return build_model(ModelShape(**asdict(BuildConfig())), out, seed=0)


def start_server(model: Path, port: int, args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "r1zero.cli", "serve", str(model), "--port", str(port), "--template", args.template,
           "--max-batch", str(args.max_batch), "--served-model-name", "bench"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not come up in 120 s")


async def one_request(client: httpx.AsyncClient, url: str, body: dict) -> tuple[float, float, int]:
    """(latency, time to first token, completion tokens) of one streamed chat request."""
    t0, first, tokens = time.perf_counter(), None, 0
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"]["message"])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif first is None and any(c["delta"].get("content") or c["delta"].get("reasoning_content")
                                       for c in chunk["choices"]):
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first if first is not None else float("nan"), tokens


async def phase(port: int, clients: int, seconds: float, max_tokens: int) -> dict:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    latencies, ttfts, tokens, errors = [], [], [0], []
    end = time.perf_counter() + seconds

    async def client_loop(k: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(k)
        while time.perf_counter() < end:
            a, b = rng.randint(10, 999), rng.randint(10, 999)
            body = {"model": "bench", "messages": [{"role": "user", "content": f"{a}+{b}="}], "stream": True,
                    "stream_options": {"include_usage": True}, "max_tokens": max_tokens, "temperature": 1.0}
            try:
                latency, ttft, n = await one_request(client, url, body)
                latencies.append(latency)
                ttfts.append(ttft)
                tokens[0] += n
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(str(e))

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        before = (await client.get(f"http://127.0.0.1:{port}/health")).json()
        await asyncio.gather(*(client_loop(k, client) for k in range(clients)))
        after = (await client.get(f"http://127.0.0.1:{port}/health")).json()
    wall = time.perf_counter() - t0
    steps = {k: after[k] - before[k] for k in ("steps", "prefills", "tokens")}
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "p50_s": statistics.median(latencies) if latencies else float("nan"), "p99_s": q[98],
            "ttft_p50_s": statistics.median(ttfts) if ttfts else float("nan"), "tokens": tokens[0],
            "tokens_per_s": tokens[0] / wall, "wall_s": wall, "rows_per_step": steps["tokens"] / max(1, steps["steps"]),
            "prefills": steps["prefills"], "steps": steps["steps"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="model folder (default: build a tiny one in a temp dir)")
    p.add_argument("--template", default="plain", help="chat template passed to the server (plain: '123+45=')")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1,
                   help="server torch threads (0 = torch's default); one suits a tiny model on a shared 2-core CPU")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else tiny_model(Path(tmp) / "tiny-bench")
        port = free_port()
        server = start_server(model, port, args)
        try:
            asyncio.run(phase(port, 2, 3, args.max_tokens))  # warm-up
            results = [asyncio.run(phase(port, c, args.seconds, args.max_tokens)) for c in (1, args.clients)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"model {model if args.model else 'tiny (random weights)'}, max_tokens {args.max_tokens}, "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs, server threads {args.threads or 'default'}")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'p50 s':>7} {'p99 s':>7} {'ttft p50':>8} {'tokens/s':>9} "
          f"{'rows/step':>9} {'prefills/steps':>14}")
    for r in results:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['p50_s']:>7.2f} {r['p99_s']:>7.2f} "
              f"{r['ttft_p50_s']:>8.3f} {r['tokens_per_s']:>9.1f} {r['rows_per_step']:>9.1f} "
              f"{r['prefills']:>6}/{r['steps']:<7}")
        if r["first_error"]:
            print(f"  first error: {r['first_error'][0]}")
    ratio = results[1]["tokens_per_s"] / results[0]["tokens_per_s"]
    print(f"aggregate tokens/s, {args.clients} clients vs 1: {ratio:.1f}x")
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
