"""Bad SFT data given to tulu sft-data: every malformed row ends the command with exit code 1
and a message naming file:line and the field — no crash, no internal error; with
--skip-bad-rows the same rows are counted and skipped, the good ones kept. Also bad options
(exit 2), missing/empty files, a missing tokenizer, and a value nested 100,000 deep.
Runs against the sanitizer build too (label "errors")."""
import json
import os
import re
import shutil
import subprocess
import sys

from tokenizer_cases import make_model_dirs

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}

# (name, bad line, words the message must contain after "FILE:LINE: ")
BAD_ROWS = [
    ("not json", "{not json", ["invalid JSON"]),
    ("trailing garbage", '{"text": "a"} x', ["invalid JSON"]),
    ("truncated line", '{"messages": [{"role": "user", "content": "Hi"}', ["invalid JSON"]),
    ("lone surrogate escape", '{"text": "\\ud800"}', ["invalid JSON"]),
    ("not an object", "[1, 2, 3]", ["expected a JSON object"]),
    ("a bare string", '"text"', ["expected a JSON object"]),
    ("no known field", '{"instruction": "x", "output": "y"}', ["none of the fields messages, prompt/completion, text"]),
    ("messages not an array", '{"messages": "hi"}', ["field messages:", "expected an array"]),
    ("messages empty", '{"messages": []}', ["field messages:", "at least one message"]),
    ("message not an object", '{"messages": [["user", "hi"]]}', ["field messages[0]:", "expected an object"]),
    ("role missing", '{"messages": [{"content": "hi"}]}', ["field messages[0].role: missing"]),
    ("role not a string", '{"messages": [{"role": 1, "content": "hi"}]}', ["field messages[0].role:", "expected a string"]),
    ("unknown role", json.dumps({"messages": GOOD["messages"] + [{"role": "tool", "content": "x"}]}),
     ["field messages[2].role:", '"tool"']),
    ("content missing", '{"messages": [{"role": "user"}]}', ["field messages[0].content: missing"]),
    ("content null", '{"messages": [{"role": "user", "content": null}]}', ["field messages[0].content: missing"]),
    ("content a list", '{"messages": [{"role": "user", "content": [{"type": "text"}]}]}',
     ["field messages[0].content:", "expected a string"]),
    ("prompt without completion", '{"prompt": "p"}', ["field completion: missing"]),
    ("completion without prompt", '{"completion": "c"}', ["field prompt: missing"]),
    ("prompt not a string", '{"prompt": 3, "completion": "c"}', ["field prompt:", "expected a string"]),
    ("text not a string", '{"text": {"a": 1}}', ["field text:", "expected a string"]),
    ("deeply nested value", '{"text": ' + "[" * 100000 + "]" * 100000 + "}", ["field text:", "expected a string"]),
]


def run(tulu, args, timeout=120):
    proc = subprocess.run([tulu, "sft-data"] + args, capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "sft_data_errors")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    # The tokenizer.model directory: it loads ~5x faster than tokenizer.json under ASan (the
    # JSON loader is exercised by test_sft_data_reference.py).
    _, model = make_model_dirs(os.path.join(tmp, "tokenizer"))
    failures = []

    def check(title, rc, err, want_rc, words):
        if rc != want_rc or not all(w in err for w in words) or "internal error" in err:
            failures.append((title, rc, err.strip()[:300]))
        else:
            print(f"ok  {title} → exit {rc}: {err.strip().splitlines()[-1][:140]}")

    # Each bad row alone, after two good lines and a blank one: the message names line 4.
    good = json.dumps(GOOD)
    all_lines = [good]
    for i, (name, line, words) in enumerate(BAD_ROWS):
        path = os.path.join(tmp, f"bad{i}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{good}\n{good}\n\n{line}\n{good}\n")
        rc, out, err = run(tulu, ["-m", model, "--data", path])
        check(name, rc, err, 1, [f"tulu sft-data: error: {path}:4: "] + words)
        all_lines.append(line)
    all_lines.append(good)

    # Invalid UTF-8 bytes (raw, not escaped), named by line and byte.
    path = os.path.join(tmp, "utf8.jsonl")
    with open(path, "wb") as f:
        f.write(good.encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    rc, out, err = run(tulu, ["-m", model, "--data", path])
    check("invalid UTF-8", rc, err, 1, [f"{path}:2: invalid UTF-8 at byte 14"])

    # --skip-bad-rows: every bad row (and the raw invalid UTF-8 one) counted, good rows kept.
    mixed = os.path.join(tmp, "mixed.jsonl")
    with open(mixed, "wb") as f:
        f.write("\n".join(all_lines).encode("utf-8") + b"\n" + b'{"text": "\xff"}\n')
    rc, out, err = run(tulu, ["-m", model, "--data", mixed, "--skip-bad-rows"])
    kept = [json.loads(line)["line"] for line in out.splitlines() if line.strip()]
    m = re.search(r"rows read: (\d+), kept: (\d+), .* bad rows skipped: (\d+)", err)
    n_bad = len(BAD_ROWS) + 1
    if rc != 0 or not m or m.groups() != (str(n_bad + 2), "2", str(n_bad)) \
            or kept != [1, len(BAD_ROWS) + 2] or f"first bad row: {mixed}:2: invalid JSON" not in err:
        failures.append(("--skip-bad-rows", rc, kept, err.strip()[-300:]))
    else:
        print(f"ok  --skip-bad-rows: {n_bad} bad rows counted, lines {kept} kept")
    # Without the flag the first bad row stops it.
    rc, out, err = run(tulu, ["-m", model, "--data", mixed])
    check("mixed without --skip-bad-rows", rc, err, 1, [f"{mixed}:2: invalid JSON"])

    # Files: missing, empty, only blank lines, all rows without a target, all bad with skip.
    def write(name, text):
        p = os.path.join(tmp, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    file_cases = [
        ("missing file", ["--data", os.path.join(tmp, "absent.jsonl")], ["absent.jsonl: cannot open"]),
        ("empty file", ["--data", write("empty.jsonl", "")], ["empty.jsonl: no rows"]),
        ("blank lines only", ["--data", write("blank.jsonl", "\n  \n\t\n")], ["blank.jsonl: no rows"]),
        ("no row with a target", ["--data", write("prompts.jsonl", '{"messages": [{"role": "user", "content": "x"}]}\n')],
         ["no usable row: 1 read, 1 without a target token"]),
        ("everything cut away", ["--data", write("cut.jsonl", good + "\n"), "--max-seq-length", "3"],
         ["no usable row", "max_seq_length 3"]),
        ("all bad, skipped", ["--data", write("allbad.jsonl", "1\n2\n"), "--skip-bad-rows"],
         ["no usable row: 2 read", "2 bad (first: "]),
        ("a directory as data", ["--data", tmp], [tmp + ": is a directory"]),
    ]
    for title, args, words in file_cases:
        rc, out, err = run(tulu, ["-m", model] + args)
        check(title, rc, err, 1, words)
    rc, out, err = run(tulu, ["-m", os.path.join(tmp, "no-model"), "--data", write("g.jsonl", good + "\n")])
    check("missing tokenizer dir", rc, err, 1, ["no-model"])

    # Bad options are parse errors (exit 2) naming the option.
    g = os.path.join(tmp, "g.jsonl")
    for title, args, words in [
        ("--max-seq-length 0", ["-m", model, "--data", g, "--max-seq-length", "0"], ["--max-seq-length"]),
        ("--max-seq-length -5", ["-m", model, "--data", g, "--max-seq-length", "-5"], ["--max-seq-length"]),
        ("--max-seq-length abc", ["-m", model, "--data", g, "--max-seq-length", "abc"], ["--max-seq-length"]),
        ("no --data", ["-m", model], ["--data"]),
        ("unknown flag", ["-m", model, "--data", g, "--pack"], ["--pack"]),
    ]:
        rc, out, err = run(tulu, args)
        check(title, rc, err, 2, words)

    if failures:
        for f in failures:
            print("FAIL", f)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
