"""Event-loop stalls: `/health` latency idle vs while big prompts are being prepared (issue 15).

    python bench/bench_serve_health.py [--model DIR] [--big 4] [--seconds 15] [--body-bytes 1000000]

Starts `r1zero serve` on loopback (default model: a fresh tiny model, as bench_serve.py builds), then
measures `GET /health` back to back (one every 50 ms) in two phases: idle, and while `--big` clients
each send chat requests of about `--body-bytes` (just under the server's 1 MB body limit) in a loop.
The tiny model's context is 256 tokens, so every big request ends in a 400 (context too long), but
only after its prompt was parsed, rendered and tokenized: the work that must not hold the event loop.
Prints the median, p90 and worst `/health` latency of each phase and their ratio (loaded / idle).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from bench_serve import free_port, start_server, tiny_model


def health_latencies(url: str, seconds: float) -> list[float]:
    out, end = [], time.perf_counter() + seconds
    with httpx.Client(timeout=120) as client:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            client.get(f"{url}/health").raise_for_status()
            out.append(time.perf_counter() - t0)
            time.sleep(0.05)
    return out


def big_body(size: int) -> bytes:
    """A chat request of about `size` bytes: one user message of arithmetic text."""
    text = "12+34=46 " * (size // 9)
    return json.dumps({"model": "bench", "messages": [{"role": "user", "content": text}], "max_tokens": 8}).encode()


def summary(latencies: list[float]) -> dict:
    q = statistics.quantiles(latencies, n=10, method="inclusive") if len(latencies) > 1 else [float("nan")] * 9
    return {"n": len(latencies), "p50": statistics.median(latencies), "p90": q[8], "max": max(latencies)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="model folder (default: build a tiny one in a temp dir)")
    p.add_argument("--big", type=int, default=4, help="clients sending big prompts during the loaded phase")
    p.add_argument("--seconds", type=float, default=15, help="length of each phase")
    p.add_argument("--body-bytes", type=int, default=1_000_000, help="size of each big request body")
    args = p.parse_args()
    args.template, args.max_batch, args.threads = "chat", 8, 1  # what start_server passes to `r1zero serve`
    body = big_body(args.body_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else tiny_model(Path(tmp) / "tiny-bench")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(model, port, args)
        try:
            health_latencies(url, 1)  # warm-up
            idle = health_latencies(url, args.seconds)
            stop, statuses, sent = threading.Event(), Counter(), Counter()

            def send_big() -> None:
                with httpx.Client(timeout=300) as client:
                    while not stop.is_set():
                        sent["requests"] += 1
                        r = client.post(f"{url}/v1/chat/completions", content=body,
                                        headers={"content-type": "application/json"})
                        statuses[r.status_code] += 1

            senders = [threading.Thread(target=send_big, daemon=True) for _ in range(args.big)]
            for t in senders:
                t.start()
            time.sleep(0.5)  # let the first big bodies arrive
            loaded = health_latencies(url, args.seconds)
            stop.set()
            for t in senders:
                t.join(timeout=300)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"model {args.model or 'tiny (random weights)'}, {args.big} clients x {len(body):,}-byte chat requests, "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs")
    print(f"{'phase':>7} {'samples':>7} {'p50 s':>7} {'p90 s':>7} {'max s':>7}")
    rows = {"idle": summary(idle), "loaded": summary(loaded)}
    for name, r in rows.items():
        print(f"{name:>7} {r['n']:>7} {r['p50']:>7.3f} {r['p90']:>7.3f} {r['max']:>7.3f}")
    print(f"big requests answered: {dict(statuses)} (400 = context too long, after tokenizing)")
    print(f"/health p50 loaded vs idle: {rows['loaded']['p50'] / rows['idle']['p50']:.1f}x, "
          f"worst {rows['loaded']['max']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
