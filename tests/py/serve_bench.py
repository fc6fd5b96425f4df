"""Aggregate generation throughput and time to first token of `tulu serve` at several
numbers of concurrent streaming clients (not a test; see docs/serving.md).

  /usr/bin/python3 tests/py/serve_bench.py --tulu build/tulu -m MODEL [--streams 1,4,8,16]
      [--tokens 128] [--threads N] [--slots 16]

For each stream count S: S clients each stream one /v1/completions request (greedy,
--tokens new tokens, distinct prompts) at the same time; aggregate tokens/s = all generated
tokens / wall time from the first request to the last [DONE]; TTFT = mean time from a
client's request to its first text chunk. One warm-up request first. Prints JSON lines."""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import serve_helper  # noqa: E402


def one_stream(server, prompt, tokens, out):
    conn = server.connection(timeout=600)
    start = time.time()
    first = None
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    usage = None
    buffer = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            payload = event[len(b"data: "):]
            if payload == b"[DONE]":
                continue
            data = json.loads(payload)
            if data.get("choices") and data["choices"][0]["text"] and first is None:
                first = time.time()
            if data.get("usage"):
                usage = data["usage"]
    conn.close()
    out.append({"ttft": (first or time.time()) - start, "tokens": usage["completion_tokens"] if usage else 0})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tulu", default=serve_helper.TULU)
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--streams", default="1,4,8,16")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--ctx-size", type=int, default=512)
    args = p.parse_args()
    serve_helper.TULU = args.tulu
    extra = ["--slots", str(args.slots), "--ctx-size", str(args.ctx_size), "--queue", "256"]
    server = serve_helper.Server(args.model, *extra)
    server.cmd = [args.tulu, "serve", "-m", args.model, "--port", "0", "-t", str(args.threads)] + extra
    with server:
        one_stream(server, "warm up", 8, [])
        for streams in [int(s) for s in args.streams.split(",")]:
            results = []
            threads = [threading.Thread(target=one_stream, args=(server, f"Prompt number {i}: once upon a time",
                                                                 args.tokens, results))
                       for i in range(streams)]
            start = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.time() - start
            total = sum(r["tokens"] for r in results)
            print(json.dumps({"model": os.path.basename(args.model.rstrip("/")), "streams": streams,
                              "generated_tokens": total, "seconds": round(wall, 3),
                              "aggregate_tokens_per_s": round(total / wall, 1),
                              "mean_ttft_s": round(sum(r["ttft"] for r in results) / len(results), 4)}),
                  flush=True)


if __name__ == "__main__":
    main()
