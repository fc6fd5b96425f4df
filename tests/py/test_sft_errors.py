"""Bad input to `tulu sft`: every bad option value, missing or unusable file, unusable model,
bad data row and unusable checkpoint must end with exit 1 and "tulu sft: error: ..." naming
the option / file / line at fault — never a crash (this test also runs in the ASan + UBSan
build), never a silent fallback. Kept fast: the only training runs are one-step runs on a
32-wide model.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "sft_errors")

failures = []


def run(args):
    return subprocess.run([TULU] + args, capture_output=True, text=True)


def expect_error(args, *needles, code=1):
    result = run(args)
    lines = [l for l in result.stderr.strip().splitlines() if l]
    message = lines[-1] if lines else ""
    crashed = result.returncode < 0 or "Sanitizer" in result.stderr or "runtime error" in result.stderr
    ok = (result.returncode == code and not crashed and message.startswith("tulu sft: error: ") and
          all(n in message for n in needles))
    shown = " ".join(a if len(a) < 24 else "..." + a[-21:] for a in args[1:])
    print(f"  {'ok  ' if ok else 'FAIL'} exit {result.returncode}: {shown[-60:]:<60} -> {message[:120]}")
    if not ok:
        failures.append(f"{args}: exit {result.returncode}, expected {needles} in: {result.stderr.strip()[-600:]}")


def expect_ok(args):
    result = run(args)
    if result.returncode != 0:
        failures.append(f"{args}: exit {result.returncode}: {result.stderr.strip()[-600:]}")
        print(f"  FAIL {args}: {result.stderr.strip()[-300:]}")
    return result


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    model = os.path.join(TMP, "model")
    expect_ok(["init", "-o", model, "--hidden-size", "32", "--intermediate-size", "64", "--layers", "1",
               "--heads", "2", "--seed", "1"])
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]}
    data = write(os.path.join(TMP, "data.jsonl"), (json.dumps(row) + "\n") * 3)
    out = os.path.join(TMP, "out")
    base = ["sft", "-m", model, "--data", data, "-o", out, "--no-progress", "-t", "1"]

    print("option values name the option and the allowed range")
    for flag, value, needle in [
        ("--lr", "0", "> 0"), ("--lr", "-1e-5", "> 0"), ("--lr", "nan", "> 0"), ("--lr", "inf", "> 0"),
        ("--batch-size", "0", ">= 1"), ("--batch-size", "-2", ">= 1"),
        ("--epochs", "0", ">= 1"),
        ("--grad-accum", "-1", ">= 1"),
        ("--effective-batch", "0", ">= 1"),
        ("--max-seq-length", "1", ">= 2"),
        ("--warmup-ratio", "1.5", "[0, 1]"), ("--warmup-ratio", "-0.1", "[0, 1]"),
        ("--warmup-steps", "-5", ">= 0"),
        ("--weight-decay", "-0.1", ">= 0"),
        ("--clip", "nan", "number"),
        ("--adam-beta1", "1", "[0, 1)"), ("--adam-beta2", "-0.5", "[0, 1)"),
        ("--adam-eps", "0", "> 0"),
        ("--max-steps", "0", ">= 1"),
        ("--save-every", "-1", ">= 0"),
        ("--save-total-limit", "-3", ">= 0"),
        ("--eval-every", "-2", ">= 0"),
        ("--lr-scheduler", "exponential", "linear, cosine or constant"),
    ]:
        expect_error(base + [flag, value], flag, needle)
    expect_error(base + ["--eval-every", "3"], "--eval-every needs --eval-data")

    print("files and directories")
    missing = os.path.join(TMP, "no-such.jsonl")
    expect_error(["sft", "-m", model, "--data", missing, "-o", out], "--data", "no-such.jsonl")
    expect_error(["sft", "-m", model, "--data", TMP, "-o", out], "--data", "is a directory")
    expect_error(base + ["--eval-data", missing], "--eval-data", "no-such.jsonl")
    not_dir = write(os.path.join(TMP, "a-file"), "x")
    expect_error(["sft", "-m", model, "--data", data, "-o", not_dir], "--output", "not a directory")
    expect_error(["sft", "-m", model, "--data", data], "--output is required")
    expect_error(["sft", "-m", os.path.join(TMP, "no-model"), "--data", data, "-o", out], "no-model")
    gguf = os.path.join(TMP, "model.gguf")
    expect_ok(["quantize", model, gguf, "--type", "f32"])
    expect_error(["sft", "-m", gguf, "--data", data, "-o", out], "GGUF", "F32, BF16 or F16")

    print("data rows name the file and line")
    bad_json = write(os.path.join(TMP, "bad.jsonl"), json.dumps(row) + "\n{\"messages\": [\n")
    expect_error(["sft", "-m", model, "--data", bad_json, "-o", out], "bad.jsonl:2")
    bad_role = write(os.path.join(TMP, "role.jsonl"),
                     json.dumps({"messages": [{"role": 3, "content": "x"}]}) + "\n")
    expect_error(["sft", "-m", model, "--data", bad_role, "-o", out], "role.jsonl:1", "role")
    empty = write(os.path.join(TMP, "empty.jsonl"), "\n")
    expect_error(["sft", "-m", model, "--data", empty, "-o", out], "empty.jsonl")

    print("resume")
    fresh = os.path.join(TMP, "fresh")
    expect_error(["sft", "-m", model, "--data", data, "-o", fresh, "--resume"], "--resume", "no checkpoint")
    expect_error(base + ["--resume-from", os.path.join(TMP, "no-checkpoint")], "--resume-from", "no-checkpoint")
    expect_error(base + ["--resume", "--dump-grads", os.path.join(TMP, "g.safetensors")], "--dump-grads", "--resume")
    run_args = base + ["--batch-size", "1", "--max-steps", "2", "--save-every", "1"]
    expect_ok(run_args)
    expect_error(run_args, "--resume", "checkpoint-2")  # a fresh run over checkpoints
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = f.readlines()
    write(os.path.join(out, "metrics.jsonl"), lines[0] + "not json\n" + "".join(lines[1:]))
    expect_error(run_args + ["--resume"], "metrics.jsonl:2")
    os.remove(os.path.join(out, "checkpoint-2", "trainer_state.json"))
    expect_error(run_args + ["--resume"], "checkpoint-2", "trainer_state.json")

    if failures:
        print(f"{len(failures)} failures:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
