"""Bad preference data given to tulu dpo-data: every malformed row ends the command with exit
code 1 and a message naming file:line and the field — no crash, no internal error; with
--skip-bad-rows the same rows are counted and skipped, the good ones kept. Also bad options
(exit 2), missing/empty files, everything truncated away, a missing tokenizer, and a value
nested 100,000 deep. Runs against the sanitizer build too (label "errors")."""
import json
import os
import re
import shutil
import subprocess
import sys

from tokenizer_cases import make_model_dirs

U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello!"}
B = {"role": "assistant", "content": "Go away."}
GOOD = {"prompt": "Hi", "chosen": [U, A], "rejected": [U, B], "score_chosen": 9}


def row(**fields):
    return json.dumps(fields)


# (name, bad line, words the message must contain after "FILE:LINE: ")
BAD_ROWS = [
    ("not json", "{not json", ["invalid JSON"]),
    ("truncated line", '{"chosen": [{"role": "user", "content": "Hi"}', ["invalid JSON"]),
    ("not an object", "[1, 2, 3]", ["expected a JSON object"]),
    ("chosen missing", row(prompt="p", rejected="r"), ["field chosen: missing"]),
    ("rejected missing", row(prompt="p", chosen="c"), ["field rejected: missing"]),
    ("rejected null", row(prompt="p", chosen="c", rejected=None), ["field rejected: missing"]),
    ("chosen a number", row(prompt="p", chosen=3, rejected="r"), ["field chosen:", "an array of messages or a string"]),
    ("chosen list, rejected string", row(chosen=[U, A], rejected="r"), ["field rejected:", "an array of messages"]),
    ("chosen string, rejected list", row(prompt="p", chosen="c", rejected=[U, B]), ["field rejected:", "expected a string"]),
    ("plain row without prompt", row(chosen="c", rejected="r"), ["field prompt: missing"]),
    ("plain prompt not a string", row(prompt=["p"], chosen="c", rejected="r"), ["field prompt:", "expected a string"]),
    ("chosen empty list", row(chosen=[], rejected=[U, B]), ["field chosen:", "at least one message"]),
    ("chosen ends with the user", row(chosen=[A, U], rejected=[U, B]), ["field chosen[1].role:", "assistant's reply"]),
    ("rejected ends with the user", row(chosen=[U, A], rejected=[B, U]), ["field rejected[1].role:", "assistant's reply"]),
    ("prompt messages differ", row(chosen=[U, A], rejected=[{"role": "user", "content": "Hey"}, B]),
     ["field rejected[0]: differs from chosen[0]"]),
    ("prompt roles differ", row(chosen=[U, A], rejected=[{"role": "system", "content": "Hi"}, B]),
     ["field rejected[0]: differs from chosen[0]"]),
    ("different lengths", row(chosen=[U, A, U, A], rejected=[U, B]), ["fields chosen and rejected", "4 messages", "rejected 2"]),
    ("unknown role", row(chosen=[{"role": "tool", "content": "x"}, A], rejected=[U, B]), ["field chosen[0].role:", '"tool"']),
    ("message not an object", row(chosen=[U, A], rejected=[U, "Go away"]), ["field rejected[1]:", "expected an object"]),
    ("content missing", row(chosen=[U, A], rejected=[U, {"role": "assistant"}]), ["field rejected[1].content: missing"]),
    ("content a list", row(chosen=[U, {"role": "assistant", "content": [1]}], rejected=[U, B]),
     ["field chosen[1].content:", "expected a string"]),
    ("reply only, no prompt", row(chosen=[A], rejected=[B]), ["field chosen: no message before the final assistant reply"]),
    ("reply only, prompt a number", row(prompt=5, chosen=[A], rejected=[B]), ["field prompt:", "expected a string"]),
    ("deeply nested value", row(rejected=[U, B], chosen=[]).replace("[]", "[" * 100000 + "]" * 100000),
     ["field chosen[0]:", "expected an object"]),
]


def run(tulu, args, timeout=120):
    proc = subprocess.run([tulu, "dpo-data"] + args, capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "dpo_data_errors")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _, model = make_model_dirs(os.path.join(tmp, "tokenizer"))  # tokenizer.model: fast under ASan
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
        check(name, rc, err, 1, [f"tulu dpo-data: error: {path}:4: "] + words)
        all_lines.append(line)
    all_lines.append(good)

    path = os.path.join(tmp, "utf8.jsonl")
    with open(path, "wb") as f:
        f.write(good.encode() + b"\n" + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    rc, out, err = run(tulu, ["-m", model, "--data", path])
    check("invalid UTF-8", rc, err, 1, [f"{path}:2: invalid UTF-8 at byte 16"])

    # --skip-bad-rows: every bad row (and a raw invalid UTF-8 one) counted, good rows kept.
    mixed = os.path.join(tmp, "mixed.jsonl")
    with open(mixed, "wb") as f:
        f.write("\n".join(all_lines).encode("utf-8") + b"\n" + b'{"prompt": "\xff"}\n')
    rc, out, err = run(tulu, ["-m", model, "--data", mixed, "--skip-bad-rows"])
    kept = [json.loads(line)["line"] for line in out.splitlines() if line.strip()]
    m = re.search(r"rows read: (\d+), kept: (\d+), .* bad rows skipped: (\d+)", err)
    n_bad = len(BAD_ROWS) + 1
    if rc != 0 or not m or m.groups() != (str(n_bad + 2), "2", str(n_bad)) \
            or kept != [1, len(BAD_ROWS) + 2] or f"first bad row: {mixed}:2: invalid JSON" not in err:
        failures.append(("--skip-bad-rows", rc, kept, err.strip()[-300:]))
    else:
        print(f"ok  --skip-bad-rows: {n_bad} bad rows counted, lines {kept} kept")
    rc, out, err = run(tulu, ["-m", model, "--data", mixed])
    check("mixed without --skip-bad-rows", rc, err, 1, [f"{mixed}:2: invalid JSON"])

    def write(name, text):
        p = os.path.join(tmp, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    file_cases = [
        ("missing file", ["--data", os.path.join(tmp, "absent.jsonl")], ["absent.jsonl: cannot open"]),
        ("empty file", ["--data", write("empty.jsonl", "")], ["empty.jsonl: no rows"]),
        ("blank lines only", ["--data", write("blank.jsonl", "\n  \n\t\n")], ["blank.jsonl: no rows"]),
        ("everything cut away", ["--data", write("cut.jsonl", good + "\n" + good + "\n"), "--max-length", "5"],
         ["no usable pair: 2 read, 2 with an empty completion", "max_length 5"]),
        ("prompt cut but no room", ["--data", write("cut2.jsonl", good + "\n"), "--max-length", "3",
                                    "--max-prompt-length", "3"], ["no usable pair: 1 read, 1 with an empty"]),
        ("all bad, skipped", ["--data", write("allbad.jsonl", "1\n2\n"), "--skip-bad-rows"],
         ["no usable pair: 2 read", "2 bad (first: "]),
        ("a directory as data", ["--data", tmp], [tmp + ": is a directory"]),
    ]
    for title, args, words in file_cases:
        rc, out, err = run(tulu, ["-m", model] + args)
        check(title, rc, err, 1, words)
    g = write("g.jsonl", good + "\n")
    rc, out, err = run(tulu, ["-m", os.path.join(tmp, "no-model"), "--data", g])
    check("missing tokenizer dir", rc, err, 1, ["no-model"])

    # A pair kept at the smallest length that fits the prompt: the summary counts the cut.
    rc, out, err = run(tulu, ["-m", model, "--data", g, "--max-length", "12", "--max-prompt-length", "6"])
    pairs = [json.loads(line) for line in out.splitlines() if line.strip()]
    if rc != 0 or len(pairs) != 1 or len(pairs[0]["prompt_ids"]) != 6 or "truncated: 1" not in err:
        failures.append(("prompt cut and kept", rc, out[:200], err[-200:]))
    else:
        print(f"ok  prompt cut to 6 tokens and kept: {pairs[0]}")

    # Bad options are parse errors (exit 2) naming the option; --help states the rule.
    for title, args, words in [
        ("--max-length 0", ["-m", model, "--data", g, "--max-length", "0"], ["--max-length"]),
        ("--max-length abc", ["-m", model, "--data", g, "--max-length", "abc"], ["--max-length"]),
        ("--max-prompt-length 0", ["-m", model, "--data", g, "--max-prompt-length", "0"], ["--max-prompt-length"]),
        ("--max-prompt-length -2", ["-m", model, "--data", g, "--max-prompt-length", "-2"], ["--max-prompt-length"]),
        ("no --data", ["-m", model], ["--data"]),
        ("unknown flag", ["-m", model, "--data", g, "--pack"], ["--pack"]),
    ]:
        rc, out, err = run(tulu, args)
        check(title, rc, err, 2, words)
    rc, out, err = run(tulu, ["--help"])
    if rc != 0 or "keep_end" not in out + err or "max-length - prompt" not in out + err:
        failures.append(("--help states the truncation rule", rc, (out + err)[-300:]))

    if failures:
        for f in failures:
            print("FAIL", f)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
