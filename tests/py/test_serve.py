"""`tulu serve` end to end over plain HTTP (http.client), on a tiny random `tulu init` model:

  parity       greedy output through /v1/chat/completions, /v1/completions and /generate
               equals `tulu generate`'s (--chat for chat), text and token count
  streaming    SSE chunks: role first, deltas concatenate to the non-streamed text,
               finish_reason, usage chunk (stream_options.include_usage), data: [DONE];
               TGI /generate_stream token events and the final generated_text + details
  fields       KV prefix reuse (usage.prompt_tokens_details.cached_tokens), stop strings (finish "stop", text cut before the stop string), max_tokens
               (finish "length"), seed (same seed → same text; n = 3 → three choices with
               their own seeds), logprobs / top_logprobs shapes and values ≤ 0,
               presence_penalty changes a greedy run
  TGI schema   /generate details (finish_reason, generated_tokens, tokens), /info, /health,
               /tokenize (= tulu tokenize's ids), /metrics counters
  concurrency  16, then 3 × 32 concurrent streaming clients with 4 slots: every stream
               complete and equal to the single-client text, RSS stable across rounds; a client that disconnects mid-stream frees
               its slot (tulu_active_slots returns to 0) and the server keeps serving; so does a client of a
               non-streaming /v1/completions, /v1/chat/completions or /generate that closes its connection while
               waiting (the sequence is cancelled, not run to max_tokens; the slot is free within 2 s)
  drain        SIGTERM during a stream: the stream still ends with [DONE], exit code 0
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import serve_helper
from serve_helper import Server

TULU = serve_helper.TULU
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "serve")
failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def cli_generate(model_dir, prompt, n, chat):
    cmd = [TULU, "generate", "-m", model_dir, "-p", prompt, "-n", str(n), "-t", "2", "--output-json"]
    if chat:
        cmd.append("--chat")
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout)


def metric(server, name):
    status, body = server.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_parity(server, model_dir):
    print("parity with tulu generate (greedy)")
    for prompt in ["Hello there", "Write a poem about the sea.", "1 2 3"]:
        ref = cli_generate(model_dir, prompt, 24, chat=True)
        status, out = server.post("/v1/chat/completions", {
            "model": "x", "messages": [{"role": "user", "content": prompt}], "max_tokens": 24})
        check(status == 200 and out["choices"][0]["message"]["content"] == ref["text"],
              f"chat {prompt!r}: {out['choices'][0]['message']['content']!r} == {ref['text']!r}")
        check(out["usage"]["prompt_tokens"] == len(ref["prompt_ids"]) and
              out["usage"]["completion_tokens"] == len(ref["ids"]), f"usage {out['usage']}")
        check(out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-") and
              isinstance(out["created"], int), "chat response fields")
        ref = cli_generate(model_dir, prompt, 12, chat=False)
        status, out = server.post("/v1/completions", {"prompt": prompt, "max_tokens": 12})
        check(status == 200 and out["choices"][0]["text"] == ref["text"] and
              out["choices"][0]["finish_reason"] == "length", f"completion {prompt!r}")
        status, out = server.post("/generate", {"inputs": prompt, "parameters": {"max_new_tokens": 12}})
        check(status == 200 and out["generated_text"] == ref["text"], f"TGI generate {prompt!r}")
    # A system message is kept (Tulu format): the prompt grows.
    _, with_system = server.post("/v1/chat/completions", {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 1})
    _, without = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
    check(with_system["usage"]["prompt_tokens"] > without["usage"]["prompt_tokens"], "system message kept")


def test_streaming(server):
    print("streaming")
    body = {"messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 20}
    _, full = server.post("/v1/chat/completions", body)
    events = server.stream("/v1/chat/completions", dict(body, stream=True, stream_options={"include_usage": True}))
    check(events[-1] == "[DONE]", "ends with [DONE]")
    chunks = events[:-1]
    check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first chunk carries the role")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    check(text == full["choices"][0]["message"]["content"], f"streamed text == non-streamed ({text!r})")
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    check(len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "length", "one finish chunk")
    check(all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks),
          "chunk object and id")
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")
    check(chunks[-1]["choices"] == [] and
          all(chunks[-1]["usage"][k] == full["usage"][k] for k in counts), "usage chunk last")
    events = server.stream("/v1/completions", {"prompt": "Once", "max_tokens": 10, "stream": True})
    _, full = server.post("/v1/completions", {"prompt": "Once", "max_tokens": 10})
    text = "".join(c["choices"][0]["text"] for c in events[:-1])
    check(events[-1] == "[DONE]" and text == full["choices"][0]["text"], "completions stream")
    check("usage" not in events[0], "no usage field without include_usage")

    events = server.stream("/generate_stream", {"inputs": "Once", "parameters": {"max_new_tokens": 10}})
    _, full = server.post("/generate", {"inputs": "Once", "parameters": {"max_new_tokens": 10, "details": True}})
    check(len(events) == 10 and all("token" in e for e in events), f"10 token events ({len(events)})")
    check([e["token"]["id"] for e in events] == [t["id"] for t in full["details"]["tokens"]],
          "stream token ids == /generate details tokens")
    check(all(e["generated_text"] is None for e in events[:-1]) and
          events[-1]["generated_text"] == full["generated_text"] and
          events[-1]["details"]["finish_reason"] == "length" and
          events[-1]["details"]["generated_tokens"] == 10, "final event: generated_text + details")


def test_fields(server):
    print("request fields")
    base = {"messages": [{"role": "user", "content": "Tell me a story about a dragon"}], "max_tokens": 30}
    _, free = server.post("/v1/chat/completions", base)
    text = free["choices"][0]["message"]["content"]
    stop = text[10:14]
    _, out = server.post("/v1/chat/completions", dict(base, stop=[stop, "zzzz-never"]))
    check(out["choices"][0]["message"]["content"] == text[:text.find(stop)] and
          out["choices"][0]["finish_reason"] == "stop", f"stop {stop!r}")
    _, out = server.post("/v1/chat/completions", dict(base, max_tokens=3))
    check(out["usage"]["completion_tokens"] == 3 and out["choices"][0]["finish_reason"] == "length", "max_tokens 3")
    # KV prefix reuse: a follow-up turn lands in the slot holding the conversation so far.
    history = base["messages"] + [{"role": "assistant", "content": text}]
    _, turn2 = server.post("/v1/chat/completions", {"messages": history + [{"role": "user", "content": "More"}],
                                                    "max_tokens": 3})
    first_len = free["usage"]["prompt_tokens"]
    cached = turn2["usage"]["prompt_tokens_details"]["cached_tokens"]
    check(cached >= first_len, f"second turn reuses the cached prefix ({cached} >= {first_len} tokens)")
    _, again = server.post("/v1/chat/completions", {"messages": history + [{"role": "user", "content": "More"}],
                                                    "max_tokens": 3})
    check(again["choices"] == turn2["choices"] and
          again["usage"]["prompt_tokens_details"]["cached_tokens"] == turn2["usage"]["prompt_tokens"] - 1,
          "the same prompt again: all but its last token cached, same output")
    sampled = dict(base, temperature=1.0, seed=7)
    _, a = server.post("/v1/chat/completions", sampled)
    _, b = server.post("/v1/chat/completions", sampled)
    _, c = server.post("/v1/chat/completions", dict(sampled, seed=8))
    check(a["choices"] == b["choices"], "same seed, same text")
    check(a["choices"] != c["choices"], "other seed, other text")
    _, n3 = server.post("/v1/chat/completions", dict(sampled, n=3))
    texts = [ch["message"]["content"] for ch in n3["choices"]]
    check([ch["index"] for ch in n3["choices"]] == [0, 1, 2] and len(set(texts)) == 3 and
          texts[0] == a["choices"][0]["message"]["content"], "n=3: three choices, the first = seed 7's")
    check(n3["usage"]["completion_tokens"] == 90, f"n=3 usage sums the choices ({n3['usage']})")
    _, lp = server.post("/v1/chat/completions", dict(base, max_tokens=5, logprobs=True, top_logprobs=3))
    content = lp["choices"][0]["logprobs"]["content"]
    check(len(content) == 5 and all(len(e["top_logprobs"]) == 3 and e["logprob"] <= 0 for e in content),
          "chat logprobs: 5 entries with 3 alternatives")
    check(all(e["logprob"] == e["top_logprobs"][0]["logprob"] for e in content),
          "greedy picks the most probable token")
    _, lp = server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 4, "logprobs": 2})
    l = lp["choices"][0]["logprobs"]
    check(len(l["tokens"]) == 4 and len(l["top_logprobs"][0]) == 2 and l["text_offset"][0] == 0,
          "completion logprobs")
    _, plain = server.post("/v1/completions", {"prompt": "a a a", "max_tokens": 30})
    _, penal = server.post("/v1/completions", {"prompt": "a a a", "max_tokens": 30, "presence_penalty": 2.0,
                                               "frequency_penalty": 2.0})
    check(plain["choices"][0]["text"] != penal["choices"][0]["text"], "penalties change greedy output")
    _, echo = server.post("/v1/completions", {"prompt": "Hello", "max_tokens": 3, "echo": True})
    check(echo["choices"][0]["text"].startswith("Hello"), "echo")


def test_tgi(server, model_dir):
    print("TGI schema")
    status, out = server.post("/generate", {"inputs": "Hi", "parameters": {
        "max_new_tokens": 5, "details": True, "return_full_text": True}})
    d = out["details"]
    check(status == 200 and out["generated_text"].startswith("Hi") and d["finish_reason"] == "length" and
          d["generated_tokens"] == 5 and len(d["tokens"]) == 5 and d["seed"] is None,
          "generate details")
    check(all(set(t) >= {"id", "text", "logprob", "special"} for t in d["tokens"]), "token fields")
    _, s1 = server.post("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 8, "do_sample": True, "seed": 3, "details": True}})
    _, s2 = server.post("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 8, "do_sample": True, "seed": 3, "details": True}})
    check(s1 == s2 and s1["details"]["seed"] == 3, "TGI seeded sampling reproducible, seed reported")
    status, info = server.get("/info")
    info = json.loads(info)
    check(status == 200 and info["max_total_tokens"] == 512 and "model_id" in info, "info")
    status, _ = server.get("/health")
    check(status == 200, "health")
    status, toks = server.post("/tokenize", {"inputs": "Hello world"})
    ref = subprocess.run([TULU, "tokenize", "-m", model_dir, "--jsonl"], input='{"text": "Hello world", "add_bos": true}\n',
                         capture_output=True, text=True, check=True, timeout=60)
    ids = [t["id"] for t in toks]
    check(status == 200 and ids == json.loads(ref.stdout)["ids"], f"tokenize ids {ids} == tulu tokenize's")
    status, body = server.get("/metrics")
    text = body.decode()
    check(status == 200 and 'tulu_requests_total{route="/generate",status="200"}' in text and
          "tulu_generated_tokens_total" in text and "tulu_request_duration_seconds_bucket" in text and
          "tulu_queue_length" in text and "tulu_time_to_first_token_seconds_count" in text,
          "metrics: counters, gauges, histograms")


def rss_kib(server):
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_concurrency(server, clients=16):
    print(f"concurrency: {clients} streaming clients, 4 slots")
    prompts = [f"Story number {i}" for i in range(4)]
    expected = {}
    for p in prompts:
        _, out = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": p}], "max_tokens": 24})
        expected[p] = out["choices"][0]["message"]["content"]
    results, errors = {}, []

    def client(i):
        p = prompts[i % len(prompts)]
        try:
            events = server.stream("/v1/chat/completions", {
                "messages": [{"role": "user", "content": p}], "max_tokens": 24, "stream": True}, timeout=120)
            assert events[-1] == "[DONE]"
            results[i] = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1] if c["choices"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {e!r}")

    start = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    check(not errors, f"no client errors {errors[:3]}")
    wrong = [i for i in range(clients) if results.get(i) != expected[prompts[i % len(prompts)]]]
    check(not wrong, f"all {clients} streams complete and equal to the single-client text (wrong: {wrong})")
    print(f"  {clients} streams x 24 tokens in {time.time() - start:.1f} s")



def test_disconnect(server):
    print("client disconnect frees the slot")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    body = json.dumps({"messages": [{"role": "user", "content": "long"}], "max_tokens": 100000, "stream": True})
    sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    first = sock.recv(4096)
    check(b"200 OK" in first, "stream started")
    # The headers may go out before the scheduler's next step admits the sequence: poll.
    deadline = time.time() + 20
    while time.time() < deadline and metric(server, "tulu_active_slots") != 1:
        time.sleep(0.01)
    check(metric(server, "tulu_active_slots") == 1, "one slot busy while streaming")
    sock.close()
    deadline = time.time() + 20
    while time.time() < deadline and metric(server, "tulu_cancelled_sequences_total") != 1:
        time.sleep(0.02)
    check(metric(server, "tulu_cancelled_sequences_total") == 1, "the sequence was cancelled")
    check(metric(server, "tulu_active_slots") == 0, "slot freed after the client left")
    status, _ = server.post("/v1/completions", {"prompt": "still there?", "max_tokens": 2})
    check(status == 200, "server still serves")


def test_disconnect_non_stream(server):
    print("a waiting non-streaming client that disconnects frees its slot")
    requests = (("/v1/completions", {"prompt": "long", "max_tokens": 100000}),
                ("/v1/chat/completions", {"messages": [{"role": "user", "content": "long"}], "max_tokens": 100000}),
                ("/generate", {"inputs": "long", "parameters": {"max_new_tokens": 100000}}))
    for path, request in requests:
        cancelled = metric(server, "tulu_cancelled_sequences_total")
        body = json.dumps(request)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        deadline = time.time() + 20
        while time.time() < deadline and metric(server, "tulu_active_slots") != 1:
            time.sleep(0.01)
        check(metric(server, "tulu_active_slots") == 1, f"{path}: one slot busy while the client waits")
        closed_at = time.time()
        sock.close()
        while time.time() < closed_at + 10 and metric(server, "tulu_active_slots") != 0:
            time.sleep(0.01)
        freed_after = time.time() - closed_at
        check(metric(server, "tulu_cancelled_sequences_total") == cancelled + 1,
              f"{path}: the sequence was cancelled (not generated to the end)")
        check(metric(server, "tulu_active_slots") == 0 and freed_after < 2.0,
              f"{path}: slot free {freed_after:.2f} s after the client left")
    status, out = server.post("/v1/completions", {"prompt": "still there?", "max_tokens": 2})
    check(status == 200 and out["usage"]["completion_tokens"] == 2, "server still serves")


def test_drain(server):
    print("SIGTERM drains")
    result = {}

    def client():
        result["events"] = server.stream("/v1/completions", {"prompt": "x", "max_tokens": 1000, "stream": True})

    t = threading.Thread(target=client)
    t.start()
    deadline = time.time() + 20
    while time.time() < deadline and metric(server, "tulu_active_slots") != 1:
        time.sleep(0.05)
    code, stderr = server.stop()
    t.join(timeout=60)
    events = result.get("events", [])
    check(code == 0, f"exit code 0 ({code}; {stderr[-200:]!r})")
    check(events and events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "length",
          "the stream in flight finished")


def main():
    os.makedirs(TMP, exist_ok=True)
    model_dir = serve_helper.make_model(os.path.join(TMP, "model"))
    with Server(model_dir, "--slots", "4", "--ctx-size", "512") as server:
        test_parity(server, model_dir)
        test_streaming(server)
        test_fields(server)
        test_tgi(server, model_dir)
        test_concurrency(server)
        # Load: three rounds of 32 concurrent streams; memory must not keep growing.
        test_concurrency(server, clients=32)
        rss_after_first = rss_kib(server)
        test_concurrency(server, clients=32)
        test_concurrency(server, clients=32)
        growth = rss_kib(server) - rss_after_first
        check(growth < 16 * 1024, f"RSS growth over two more rounds of 32 streams: {growth} KiB (< 16 MiB)")
    # A slower model (about 1 ms per token) so that streams are still running when the
    # client leaves or SIGTERM comes.
    slow_dir = os.path.join(TMP, "slow_model")
    if not os.path.exists(os.path.join(slow_dir, "config.json")):
        subprocess.run([TULU, "init", "-o", slow_dir, "--preset", "tiny", "--hidden-size", "256",
                        "--intermediate-size", "688", "--layers", "6", "--heads", "4"], check=True,
                       capture_output=True, timeout=120)
    with Server(slow_dir, "--slots", "2", "--ctx-size", "2048") as server:
        test_disconnect(server)
        test_disconnect_non_stream(server)
        test_drain(server)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
