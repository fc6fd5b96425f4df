"""`tulu eval prefs` refuses bad models, data, options and output paths with exit 1 (a
tulu::Error naming the file / line / field / flag) or 2 (command-line parse errors), never a
crash (fast: runs in the ASan build too)."""

import json
import os
import shutil
import subprocess
import sys

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "eval_prefs_errors")

failures = []


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True, timeout=300)


def expect(label, args, code, *needles):
    p = tulu(*args)
    crashed = "Sanitizer" in p.stderr or "internal error" in p.stderr or p.returncode not in (0, 1, 2)
    ok = p.returncode == code and all(n in p.stderr for n in needles) and not crashed
    if not ok:
        failures.append(label)
        print(f"  FAIL {label}: exit {p.returncode}, stderr: {p.stderr.strip()[:500]}")
    else:
        last = p.stderr.strip().splitlines()[-1][:160] if p.stderr.strip() else ""
        print(f"  ok   {label}: {last}")
    return p


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def row(prompt, chosen="yes", rejected="no"):
    return json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n"


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    init = ["--hidden-size", "16", "--intermediate-size", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1"]
    model, other_vocab, short = (os.path.join(TMP, n) for n in ("m", "m_vocab", "m_short"))
    assert tulu("init", "-o", model, *init).returncode == 0
    assert tulu("init", "-o", other_vocab, *init, "--vocab-size", "32064").returncode == 0
    assert tulu("init", "-o", short, *init, "--max-position-embeddings", "24").returncode == 0
    data = os.path.join(TMP, "p.jsonl")
    write(data, "".join(row(f"q{i}") for i in range(3)))
    base = ["eval", "prefs", "-m", model, "--data", data, "-t", "1", "--no-progress"]

    print("a good run first (the rest must fail for the reason named)")
    p = expect("good", base, 0)
    if "logp_accuracy" not in p.stdout:
        failures.append("good run: no table")

    print("files")
    expect("model missing", ["eval", "prefs", "-m", os.path.join(TMP, "nope"), "--data", data], 1, "nope")
    expect("ref model missing", [*base, "--ref-model", os.path.join(TMP, "nope_ref")], 1, "nope_ref")
    expect("data missing", ["eval", "prefs", "-m", model, "--data", os.path.join(TMP, "none.jsonl")], 1,
           "none.jsonl")
    expect("data is a directory", ["eval", "prefs", "-m", model, "--data", TMP], 1, TMP)
    garbage = os.path.join(TMP, "garbage.gguf")
    with open(garbage, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    expect("garbage GGUF policy", ["eval", "prefs", "-m", garbage, "--data", data], 1, "garbage.gguf")
    expect("vocabulary mismatch", [*base, "--ref-model", other_vocab], 1, other_vocab, model, "32064", "32000")

    print("data")
    bad = os.path.join(TMP, "bad.jsonl")
    write(bad, row("q0") + "{not json\n" + row("q2"))
    expect("malformed JSON", ["eval", "prefs", "-m", model, "--data", bad], 1, "bad.jsonl:2")
    write(bad, row("q0") + row("q1") + json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    expect("missing field", ["eval", "prefs", "-m", model, "--data", bad], 1, "bad.jsonl:3", "rejected")
    write(bad, row("q0") + json.dumps({"prompt": "q", "chosen": 5, "rejected": "b"}) + "\n")
    expect("wrong field type", ["eval", "prefs", "-m", model, "--data", bad], 1, "bad.jsonl:2", "chosen")
    write(bad, row("q0") + json.dumps({"prompt": "q", "chosen": "a"}) + "\n" + row("q2"))
    p = expect("--skip-bad-rows", [*base[:4], "--data", bad, "--skip-bad-rows", "--no-progress"], 0,
               "bad rows skipped: 1", "bad.jsonl:2")
    if "pairs                      2" not in p.stdout:
        failures.append("--skip-bad-rows: the table should count 2 pairs")
    empty = os.path.join(TMP, "empty.jsonl")
    write(empty, "\n\n")
    expect("empty data", ["eval", "prefs", "-m", model, "--data", empty], 1, "empty.jsonl")
    with open(bad, "wb") as f:
        f.write(row("q0").encode() + b'{"prompt": "\xff", "chosen": "a", "rejected": "b"}\n')
    expect("invalid UTF-8", ["eval", "prefs", "-m", model, "--data", bad], 1, "bad.jsonl:2")

    print("lengths")
    long_data = os.path.join(TMP, "long.jsonl")
    write(long_data, row("short") + row("a much longer prompt " * 6, "and a long reply too " * 3))
    expect("pair longer than the context", ["eval", "prefs", "-m", short, "--data", long_data, "--no-progress"], 1,
           "line 2", "max_position_embeddings (24", "--max-length")
    expect("reference with a shorter context", [*base[:4], "--data", long_data, "--ref-model", short,
                                                "--no-progress"], 1, "line 2", short)
    expect("cut to fit", ["eval", "prefs", "-m", short, "--data", long_data, "--max-length", "24",
                          "--max-prompt-length", "12", "--no-progress"], 0, "truncated: 1")
    expect("every pair dropped", [*base, "--max-length", "4"], 1, "p.jsonl")

    print("options")
    for value in ("0", "-1", "nan", "inf"):
        expect(f"--beta {value}", [*base, "--beta", value], 1, "--beta")
    expect("--beta text", [*base, "--beta", "big"], 2, "--beta")
    expect("--max-length 1", [*base, "--max-length", "1"], 1, "--max-length")
    expect("--max-prompt-length 0", [*base, "--max-prompt-length", "0"], 1, "--max-prompt-length")
    expect("--max-prompt-length >= --max-length", [*base, "--max-length", "10", "--max-prompt-length", "10"], 1,
           "--max-prompt-length")
    expect("--limit 0", [*base, "--limit", "0"], 2, "--limit")
    expect("--threads -1", [*base, "-t", "-1"], 2, "--threads")
    expect("unknown flag", [*base, "--temperature", "1"], 2, "--temperature")
    expect("no data", ["eval", "prefs", "-m", model], 2, "--data")
    expect("no evaluation named", ["eval"], 2, "tulu eval: choose a subcommand: prefs (see tulu eval --help)")
    expect("no command named", [], 2, "tulu: choose a subcommand: ", "eval", "sft", "dpo", "(see tulu --help)")
    expect("unknown evaluation", ["eval", "perplexity", "-m", model], 2, "subcommand")
    expect("--json into a missing directory", [*base, "--json", os.path.join(TMP, "no", "r.json")], 1, "--json",
           os.path.join(TMP, "no"))
    expect("--per-pair is a directory", [*base, "--per-pair", TMP], 1, "--per-pair")
    expect("both to stdout", [*base, "--json", "-", "--per-pair", "-"], 1, "--json -", "--per-pair -")

    print("help")
    p = tulu("eval", "--help")
    if p.returncode != 0 or "prefs" not in p.stdout:
        failures.append("tulu eval --help lists prefs")
    p = tulu("eval", "prefs", "--help")
    if p.returncode != 0 or "keep_end" not in p.stdout or "--ref-model" not in p.stdout:
        failures.append("tulu eval prefs --help states the truncation rule")

    if failures:
        print(f"FAILED ({len(failures)}): {failures}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
