"""The web chat page at / in headless Chromium (Debian's chromium, driven by npm
playwright-core from tests/reference/node_modules; skipped with a note when either is
missing): two turns with a system prompt and max tokens set in the page; each streamed
reply shown must equal the greedy reply the API gives for the same conversation
(system + turns so far), so the page renders the stream completely and keeps history."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import serve_helper
from serve_helper import Server

SOURCE = os.environ.get("TULU_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_MODULES = os.path.join(SOURCE, "tests", "reference", "node_modules")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "serve_chat_page")
failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def main():
    if (shutil.which("node") is None or not os.path.exists(CHROMIUM) or
            not os.path.isdir(os.path.join(NODE_MODULES, "playwright-core"))):
        print("SKIP: node, playwright-core or chromium is missing (run scripts/setup.sh)")
        return
    os.makedirs(TMP, exist_ok=True)
    model_dir = serve_helper.make_model(os.path.join(TMP, "model"))
    with Server(model_dir, "--slots", "2", "--ctx-size", "512") as server:
        status, _, page = server.request("GET", "/")
        check(status == 200 and b"<title>tulu chat</title>" in page, "GET / serves the page")
        env = dict(os.environ, NODE_PATH=NODE_MODULES, CHROMIUM=CHROMIUM)
        run = subprocess.run(["node", os.path.join(SOURCE, "tests", "serve", "chat_page_browser.js"),
                              f"http://127.0.0.1:{server.port}/"], capture_output=True, text=True,
                             timeout=150, env=env)
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-3000:])
        check(run.returncode == 0, "the browser script ran")
        if run.returncode == 0:
            out = json.loads(run.stdout)
            check(out["title"] == "tulu chat" and out["errors"] == 0 and out["bubbles"] == 4,
                  f"two user and two assistant bubbles, no errors ({out})")
            messages = [{"role": "system", "content": "You are a test."}]
            for turn, shown in zip(["Hello there", "And then?"], out["replies"]):
                messages.append({"role": "user", "content": turn})
                _, api = server.post("/v1/chat/completions", {"messages": messages, "max_tokens": 12,
                                                              "temperature": 0, "top_p": 1})
                expected = api["choices"][0]["message"]["content"]
                check(shown == expected, f"page shows the streamed reply {shown!r} == API {expected!r}")
                messages.append({"role": "assistant", "content": expected})
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
