"""Bad input to tulu tokenize / detokenize / render-chat: each must end with exit code 1 and
a message naming the problem (line number, field, file) — no crash, no internal error.
Runs against the sanitizer build too (label "errors")."""
import json
import os
import shutil
import subprocess
import sys

from tokenizer_cases import LLAMA2_DIR


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "tokenizer_errors")
    shutil.rmtree(tmp, ignore_errors=True)
    good = os.path.join(tmp, "good")
    truncated = os.path.join(tmp, "truncated")
    empty = os.path.join(tmp, "empty")
    for d in (good, truncated, empty):
        os.makedirs(d)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(os.path.join(LLAMA2_DIR, name), good)
    with open(os.path.join(LLAMA2_DIR, "tokenizer.model"), "rb") as f:
        data = f.read()
    with open(os.path.join(truncated, "tokenizer.model"), "wb") as f:
        f.write(data[: len(data) // 2])

    ok_line = json.dumps({"text": "fine"})
    cases = [
        # (args, stdin, words the message must contain)
        (["tokenize", "-m", good, "--jsonl"], ok_line + "\n{not json\n", ["stdin line 2"]),
        (["tokenize", "-m", good, "--jsonl"], '{"text": 5}\n', ["stdin line 1", "text"]),
        (["tokenize", "-m", good, "--jsonl"], '{"txt": "a"}\n', ["stdin line 1", "text"]),
        (["tokenize", "-m", good, "--jsonl"], '{"text": "a", "add_bos": "yes"}\n', ["add_bos"]),
        (["tokenize", "-m", good, "--jsonl"], '[1, 2]\n', ["stdin line 1", "object"]),
        (["detokenize", "-m", good, "--jsonl"], '{"ids": [1, 32000]}\n', ["stdin line 1", "ids[1]"]),
        (["detokenize", "-m", good, "--jsonl"], '{"ids": [1, -3]}\n', ["ids[1]"]),
        (["detokenize", "-m", good, "--jsonl"], '{"ids": "1 2"}\n', ["ids"]),
        (["detokenize", "-m", good, "--jsonl"], '{"ids": [1.5]}\n', ["ids[0]"]),
        (["detokenize", "-m", good, "--ids", "1,x,3"], "", ["'x'"]),
        (["tokenize", "-m", truncated, "-p", "hi"], "", ["tokenizer.model"]),
        (["tokenize", "-m", empty, "-p", "hi"], "", ["no tokenizer.json or tokenizer.model"]),
        (["tokenize", "-m", os.path.join(tmp, "absent"), "-p", "hi"], "", ["not a directory"]),
        (["render-chat", "-m", good], '{"messages": [{"role": "user"}]}', ["messages[0]", "content"]),
        (["render-chat", "-m", good], '{"messages": [{"role": "robot", "content": "x"}]}', ["role 'robot'"]),
        (["render-chat", "-m", good, "--chat-format", "vicuna"], '{"messages": []}', ["vicuna"]),
        (["render-chat", "-m", good], '{"messages": 3}', ["messages"]),
        (["render-chat", "-m", good, "--jsonl"], '{"messages": []}\n\n{"messages": [}\n', ["stdin line 3"]),
        (["render-chat", "-m", good, "--chat-format", "llama-2-chat"],
         '{"messages": [{"role": "assistant", "content": "x"}]}', ["alternate"]),
    ]
    failures = []
    for args, stdin, words in cases:
        proc = subprocess.run([tulu] + args, input=stdin.encode(), capture_output=True, timeout=120)
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 1 or not all(w in err for w in words) or "internal error" in err:
            failures.append((args[0], stdin[:40], proc.returncode, err.strip()[:300]))
        else:
            print(f"ok  tulu {args[0]} → exit 1: {err.strip()[:120]}")
    # An unknown flag is a usage error (CLI11's exit code), never accepted.
    proc = subprocess.run([tulu, "tokenize", "-m", good, "--bogus"], capture_output=True)
    if proc.returncode in (0, 1) or proc.returncode >= 128 or b"--bogus" not in proc.stderr:
        failures.append(("--bogus", "", proc.returncode, proc.stderr.decode()[:200]))
    print(f"bad-input cases with a clear error: {len(cases) + 1 - len(failures)}/{len(cases) + 1}")
    for f in failures:
        print("  FAIL", f)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
