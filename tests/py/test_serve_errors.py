"""Bad input never hurts `tulu serve` (also run against the ASan + UBSan build): each bad
request gets the right 4xx status with the API's error shape — OpenAI routes
{"error": {"message", "type", "param", "code"}}, TGI routes {"error", "error_type"} — and
the server keeps answering good requests. Covers malformed JSON, wrong types, unknown
fields, out-of-range values, empty and malformed messages, prompts longer than the
context, bodies over --max-body (413), unknown routes (404), a missing / wrong API key
(401), a client that sends half a body and stalls, and SIGTERM → exit 0."""

import json
import os
import socket
import sys
import tempfile
import time

import serve_helper
from serve_helper import Server

TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "serve_errors")
KEY = "secret-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def openai_error(status, body, expected_status, param=None):
    ok = (status == expected_status and isinstance(body, dict) and set(body) == {"error"} and
          set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"])
    if param is not None:
        ok = ok and body["error"]["param"] == param
    return ok


def tgi_error(status, body, expected_status):
    return (status == expected_status and isinstance(body, dict) and set(body) == {"error", "error_type"}
            and body["error"])


CHAT = "/v1/chat/completions"
GOOD_CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}

OPENAI_CASES = [
    # (path, body, status, param)
    (CHAT, "{not json", 400, None),
    (CHAT, "", 400, None),
    (CHAT, "[1, 2]", 400, None),
    (CHAT, {}, 400, "messages"),
    (CHAT, {"messages": []}, 400, "messages"),
    (CHAT, {"messages": "hello"}, 400, "messages"),
    (CHAT, {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    (CHAT, {"messages": [{"role": "user"}]}, 400, "messages[0].content"),
    (CHAT, {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content"),
    (CHAT, {"messages": ["hi"]}, 400, None),
    (CHAT, dict(GOOD_CHAT, temperature="hot"), 400, "temperature"),
    (CHAT, dict(GOOD_CHAT, temperature=5), 400, "temperature"),
    (CHAT, dict(GOOD_CHAT, top_p=0), 400, "top_p"),
    (CHAT, dict(GOOD_CHAT, max_tokens=0), 400, "max_tokens"),
    (CHAT, dict(GOOD_CHAT, max_tokens=1.5), 400, "max_tokens"),
    (CHAT, dict(GOOD_CHAT, max_tokens=-3), 400, "max_tokens"),
    (CHAT, dict(GOOD_CHAT, max_tokens=10**30), 400, "max_tokens"),
    (CHAT, dict(GOOD_CHAT, n=0), 400, "n"),
    (CHAT, dict(GOOD_CHAT, n=1000), 400, "n"),
    (CHAT, dict(GOOD_CHAT, stop=""), 400, "stop"),
    (CHAT, dict(GOOD_CHAT, stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    (CHAT, dict(GOOD_CHAT, stop=[1]), 400, "stop"),
    (CHAT, dict(GOOD_CHAT, seed=-1), 400, "seed"),
    (CHAT, dict(GOOD_CHAT, stream="yes"), 400, "stream"),
    (CHAT, dict(GOOD_CHAT, stream_options={"include_usage": True}), 400, "stream_options"),
    (CHAT, dict(GOOD_CHAT, top_logprobs=3), 400, "top_logprobs"),
    (CHAT, dict(GOOD_CHAT, logprobs=True, top_logprobs=50), 400, "top_logprobs"),
    (CHAT, dict(GOOD_CHAT, presence_penalty=3), 400, "presence_penalty"),
    (CHAT, dict(GOOD_CHAT, tools=[]), 400, "tools"),
    (CHAT, dict(GOOD_CHAT, frobnicate=1), 400, "frobnicate"),
    (CHAT, {"messages": [{"role": "user", "content": "word " * 400}]}, 400, "messages"),
    ("/v1/completions", {}, 400, "prompt"),
    ("/v1/completions", {"prompt": 7}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, 2, 99999999]}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, -2]}, 400, "prompt"),
    ("/v1/completions", {"prompt": "x", "logprobs": 9}, 400, "logprobs"),
    ("/v1/completions", {"prompt": "x", "suffix": "y"}, 400, "suffix"),
    ("/v1/completions", {"prompt": "x", "best_of": 3}, 400, "best_of"),
]

TGI_CASES = [
    ("/generate", "{oops", 400),
    ("/generate", {}, 422),
    ("/generate", {"inputs": ""}, 422),
    ("/generate", {"inputs": 3}, 422),
    ("/generate", {"inputs": "x", "parameters": []}, 422),
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 0}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"temperature": 0}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"top_p": 1.0}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"top_k": 0}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"repetition_penalty": -1}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"stop": "abc", "max_new_tokens": 2}}, 200),
    ("/generate", {"inputs": "x", "parameters": {"seed": "one"}}, 422),
    ("/generate", {"inputs": "x", "parameters": {"bogus": 1}}, 422),
    ("/generate", {"inputs": "word " * 400}, 422),
    ("/generate_stream", {"inputs": "x", "parameters": {"max_new_tokens": -1}}, 422),
    ("/tokenize", {"inputs": 5}, 422),
]


def main():
    os.makedirs(TMP, exist_ok=True)
    model_dir = serve_helper.make_model(os.path.join(TMP, "model"))
    with Server(model_dir, "--slots", "2", "--ctx-size", "256", "--api-key", KEY, "--max-body", "20000") as server:
        print("OpenAI routes")
        for path, body, status, param in OPENAI_CASES:
            got_status, got = server.post(path, body, headers=AUTH)
            check(openai_error(got_status, got, status, param),
                  f"{path} {json.dumps(body)[:60]} -> {got_status} {json.dumps(got)[:120] if isinstance(got, dict) else got[:80]}")
        print("TGI routes")
        for path, body, status in TGI_CASES:
            got_status, got = server.post(path, body, headers=AUTH)
            if status == 200:
                check(got_status == 200, f"{path} {json.dumps(body)[:60]} -> {got_status}")
            else:
                check(tgi_error(got_status, got, status),
                      f"{path} {json.dumps(body)[:60]} -> {got_status} {json.dumps(got)[:120] if isinstance(got, dict) else got[:80]}")

        print("HTTP-level errors")
        status, got = server.post("/v1/nope", {}, headers=AUTH)
        check(openai_error(status, got, 404), f"unknown /v1 route -> 404 OpenAI shape ({status})")
        status, got = server.post("/nope", {}, headers=AUTH)
        check(tgi_error(status, got, 404), f"unknown route -> 404 TGI shape ({status})")
        status, got = server.post(CHAT, {"messages": [{"role": "user", "content": "x" * 30000}]}, headers=AUTH)
        check(openai_error(status, got, 413), f"body over --max-body -> 413 ({status})")
        status, got = server.post(CHAT, GOOD_CHAT)
        check(openai_error(status, got, 401) and got["error"]["code"] == "invalid_api_key", f"no key -> 401 ({status})")
        status, got = server.post(CHAT, GOOD_CHAT, headers={"Authorization": "Bearer wrong"})
        check(openai_error(status, got, 401), f"wrong key -> 401 ({status})")
        status, got = server.post("/generate", {"inputs": "x"})
        check(tgi_error(status, got, 401), f"TGI route without key -> 401 ({status})")
        status, _ = server.get("/health")
        check(status == 200, "/health needs no key")

        print("a client that stalls mid-body does not block others")
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"mess")
        start = time.time()
        status, got = server.post(CHAT, GOOD_CHAT, headers=AUTH)
        check(status == 200 and got["choices"][0]["finish_reason"] == "length" and time.time() - start < 20,
              f"good request answered while another client stalls ({status})")
        stalled.close()

        print("after all of that")
        status, got = server.post(CHAT, GOOD_CHAT, headers=AUTH)
        check(status == 200 and got["usage"]["completion_tokens"] == 2, f"good request -> 200 ({status})")
        code, stderr = server.stop()
        check(code == 0, f"SIGTERM -> exit 0 ({code}, {stderr[-300:]!r})")
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
