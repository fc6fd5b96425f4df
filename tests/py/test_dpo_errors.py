"""`tulu dpo` refuses bad options, data, reference models, reference files and resumes with
exit 1 and a message naming the flag / file / line / field (fast: runs in the ASan build)."""

import json
import os
import shutil
import subprocess
import sys

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "dpo_errors")

failures = []


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def expect(label, args, code, *needles):
    p = tulu("dpo", *args)
    ok = p.returncode == code and all(n in p.stderr for n in needles)
    if not ok:
        failures.append(label)
        print(f"  FAIL {label}: exit {p.returncode}, stderr: {p.stderr.strip()[:400]}")
    else:
        print(f"  ok   {label}: {p.stderr.strip().splitlines()[-1][:150] if p.stderr.strip() else ''}")
    return p


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    model = os.path.join(TMP, "m")
    init = ["--hidden-size", "16", "--intermediate-size", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1"]
    assert tulu("init", "-o", model, *init).returncode == 0
    other_vocab = os.path.join(TMP, "m_vocab")
    assert tulu("init", "-o", other_vocab, *init, "--vocab-size", "32064").returncode == 0
    data = os.path.join(TMP, "p.jsonl")
    write(data, "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(3)))
    out = os.path.join(TMP, "out")
    base = ["-m", model, "--data", data, "-o", out, "-t", "1", "--no-progress", "--max-steps", "1"]

    print("options")
    expect("beta 0", [*base, "--beta", "0"], 1, "--beta")
    expect("beta nan", [*base, "--beta", "nan"], 1, "--beta")
    expect("label smoothing", [*base, "--label-smoothing", "0.7"], 1, "--label-smoothing")
    expect("loss name", [*base, "--loss", "kto"], 1, "--loss", "kto", "sigmoid")
    expect("max length", [*base, "--max-length", "1"], 1, "--max-length")
    expect("max prompt length 0", [*base, "--max-prompt-length", "0"], 1, "--max-prompt-length")
    expect("max prompt length >= max length", [*base, "--max-length", "10", "--max-prompt-length", "10"], 1,
           "--max-prompt-length")
    expect("simpo gamma", [*base, "--loss", "simpo", "--simpo-gamma", "inf"], 1, "--simpo-gamma")
    expect("lr", [*base, "--lr", "-1"], 1, "--lr")
    expect("epochs", [*base, "--epochs", "0"], 1, "--epochs")
    expect("batch size", [*base, "--batch-size", "0"], 1, "--batch-size")
    expect("output missing", ["-m", model, "--data", data, "-t", "1"], 1, "--output")
    expect("dump with resume", [*base, "--dump-grads", os.path.join(TMP, "g.safetensors"), "--resume"], 1,
           "--dump-grads")
    expect("non-numeric beta", [*base, "--beta", "abc"], 2, "--beta")

    print("reference")
    expect("ref model missing", [*base, "--ref-model", os.path.join(TMP, "nope")], 1, "--ref-model", "nope")
    expect("ref model with simpo", [*base, "--loss", "simpo", "--ref-model", model], 1, "--ref-model", "simpo")
    expect("ref model without weights", [*base, "--ref-model", TMP], 1, "--ref-model")
    expect("ref model vocab", [*base, "--ref-model", other_vocab], 1, "--ref-model", "32064")
    expect("precompute file is a directory", [*base, "--precompute-ref", TMP], 1, "--precompute-ref")
    bad = os.path.join(TMP, "bad.json")
    write(bad, "{not json")
    expect("precompute file malformed", [*base, "--precompute-ref", bad], 1, "--precompute-ref", "bad.json")
    write(bad, json.dumps({"format": "something-else"}))
    expect("precompute file of another format", [*base, "--precompute-ref", bad], 1, "--precompute-ref", "format")
    good = os.path.join(TMP, "ref.json")
    p = tulu("dpo", *base, "--precompute-ref", good)
    assert p.returncode == 0, p.stderr
    cache = json.load(open(good))
    cache["train"]["rejected"][1] = "x"
    write(bad, json.dumps(cache))
    expect("precompute value not a number", [*base, "--precompute-ref", bad], 1, "train.rejected[1]")
    cache = json.load(open(good))
    cache["train"]["chosen"].pop()
    write(bad, json.dumps(cache))
    expect("precompute counts differ", [*base, "--precompute-ref", bad], 1, "bad.json")

    print("data")
    expect("data missing", [*base[:3], os.path.join(TMP, "none.jsonl"), *base[4:]], 1, "--data", "none.jsonl")
    rows = os.path.join(TMP, "rows.jsonl")
    write(rows, json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n" + json.dumps({"prompt": "a", "chosen": "b"}) + "\n")
    expect("missing rejected", ["-m", model, "--data", rows, "-o", out, "-t", "1"], 1, "rows.jsonl:2", "rejected")
    write(rows, json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n{oops\n")
    expect("malformed json", ["-m", model, "--data", rows, "-o", out, "-t", "1"], 1, "rows.jsonl:2")
    write(rows, "")
    expect("empty data", ["-m", model, "--data", rows, "-o", out, "-t", "1"], 1, "rows.jsonl")
    expect("eval data missing", [*base, "--eval-data", os.path.join(TMP, "e.jsonl")], 1, "--eval-data")

    print("resume")
    shutil.rmtree(out, ignore_errors=True)
    p = tulu("dpo", *base, "--save-every", "1")
    assert p.returncode == 0, p.stderr
    expect("fresh run over checkpoints", base, 1, "--resume")
    expect("resume with another loss", [*base, "--resume", "--loss", "hinge"], 1, "--loss", "sigmoid", "hinge")
    expect("resume with another max length", [*base, "--resume", "--max-length", "100"], 1, "--max-length: 8192 then, 100 now")
    expect("resume nothing", ["-m", model, "--data", data, "-o", os.path.join(TMP, "empty"), "-t", "1", "--resume"], 1,
           "--resume")

    if failures:
        print(f"{len(failures)} failure(s): {failures}")
        sys.exit(1)
    print("all DPO error checks passed")


if __name__ == "__main__":
    main()
