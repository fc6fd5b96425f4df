"""`tulu serve` through the official `openai` npm client (tests/reference/node_modules,
installed by scripts/setup.sh; skipped with a note when node or the package is missing):
models.list, chat (non-streamed and streamed with include_usage), completions (both),
a 400 surfaced as the client's BadRequestError with param, a wrong key as 401. Greedy texts
must equal `tulu generate`'s and the streamed texts the non-streamed ones."""

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
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "serve_openai_client")
PROMPT = "Write a limerick about a cat"
failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def main():
    if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_MODULES, "openai")):
        print("SKIP: node or the openai npm package is missing (run scripts/setup.sh)")
        return
    os.makedirs(TMP, exist_ok=True)
    model_dir = serve_helper.make_model(os.path.join(TMP, "model"))

    def generate(n, chat):
        cmd = [serve_helper.TULU, "generate", "-m", model_dir, "-p", PROMPT, "-n", str(n), "-t", "2", "--output-json"]
        return json.loads(subprocess.run(cmd + (["--chat"] if chat else []), check=True, capture_output=True,
                                         timeout=60).stdout)["text"]

    with Server(model_dir, "--slots", "2", "--ctx-size", "256", "--api-key", "k-123") as server:
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        run = subprocess.run(["node", os.path.join(SOURCE, "tests", "serve", "openai_client.js"),
                              f"http://127.0.0.1:{server.port}/v1", "k-123", PROMPT],
                             capture_output=True, text=True, timeout=120, env=env)
        if run.returncode != 0:
            print(run.stdout, run.stderr)
        check(run.returncode == 0, "the openai client script ran")
        out = json.loads(run.stdout) if run.returncode == 0 else {}
        if out:
            check(out["models"] == ["model"], f"models.list {out['models']}")
            chat_ref = generate(16, chat=True)
            check(out["chat"]["text"] == chat_ref and out["chat"]["object"] == "chat.completion",
                  f"chat text == tulu generate --chat ({out['chat']['text']!r})")
            check(out["chat"]["usage"]["completion_tokens"] == 16 and out["chat"]["finish"] == "length", "chat usage")
            check(out["chat_stream"]["text"] == chat_ref and out["chat_stream"]["finish"] == "length" and
                  out["chat_stream"]["usage"]["completion_tokens"] == 16, "streamed chat")
            completion_ref = generate(8, chat=False)
            check(out["completion"]["text"] == completion_ref, f"completion == tulu generate ({out['completion']['text']!r})")
            check(out["completion_stream"]["text"] == completion_ref, "streamed completion")
            check(out["bad_request"]["status"] == 400 and out["bad_request"]["param"] == "messages",
                  f"400 surfaced by the client {out['bad_request']}")
            check(out["unauthorized"]["status"] == 401, f"401 surfaced by the client {out['unauthorized']}")
        code, _ = server.stop()
        check(code == 0, "SIGTERM -> exit 0")
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
