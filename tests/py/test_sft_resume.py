"""`tulu sft --resume`: a run killed with SIGKILL after its first checkpoint, then resumed,
ends with exactly the same model.safetensors bytes and the same metrics.jsonl rows as an
uninterrupted run (same operations in the same order: fp32 master weights and Adam moments
restored, the seeded epoch plan rebuilt, the metrics rows after the checkpoint dropped).
The run covers a bf16 model (master weights must not be re-read from the rounded copy),
length buckets, clipping, weight decay, warm-up, evaluation and several epochs.
Also: --resume-from a given checkpoint into a fresh directory, --save-total-limit, and the
refusals (an option that differs from the checkpoint's run, a fresh run over old checkpoints).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "sft_resume")

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print("  FAIL", message)
    return cond


def run(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def model_bytes(out):
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        return f.read()


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    model = os.path.join(TMP, "model")
    p = run("init", "-o", model, "--hidden-size", "32", "--intermediate-size", "64", "--layers", "2",
            "--heads", "4", "--kv-heads", "2", "--dtype", "bf16", "--seed", "5")
    assert p.returncode == 0, p.stderr
    words = ["north", "quiet", "amber", "ladder", "signal", "copper", "meadow", "lantern", "vivid"]
    rows = [{"text": " ".join(words[(i + j * 2) % len(words)] for j in range(3 + i % 7))} for i in range(24)]
    data = os.path.join(TMP, "data.jsonl")
    with open(data, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    # 24 rows / batch 2 = 12 micro-batches, accum 2 -> 6 steps per epoch, 3 epochs = 18 steps.
    common = ["sft", "-m", model, "--data", data, "--batch-size", "2", "--grad-accum", "2", "--epochs", "3",
              "--lr", "5e-3", "--warmup-steps", "2", "--clip", "0.5", "--weight-decay", "0.1", "--length-buckets",
              "--eval-data", data, "--eval-every", "4", "--save-every", "2", "-t", "2", "--no-progress"]

    print("uninterrupted run")
    full = os.path.join(TMP, "full")
    p = run(*common, "-o", full)
    assert p.returncode == 0, p.stderr
    full_metrics = metrics(full)
    check(len([r for r in full_metrics if "loss" in r]) == 18, f"{len(full_metrics)} rows")

    print("run killed (SIGKILL) after its first checkpoint, then --resume")
    killed = os.path.join(TMP, "killed")
    proc = subprocess.Popen([TULU, *common, "-o", killed, "--save-total-limit", "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(os.path.join(killed, "checkpoint-2")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    check(proc.returncode == -signal.SIGKILL, f"the run was not killed mid-way (exit {proc.returncode})")
    check(not os.path.exists(os.path.join(killed, "model.safetensors")), "the killed run wrote its final model")
    left = sorted(d for d in os.listdir(killed) if d.startswith("checkpoint-"))
    print(f"  killed with {left} on disk, {len(metrics(killed)) if os.path.exists(os.path.join(killed, 'metrics.jsonl')) else 0} metrics rows")

    p = run(*common, "-o", killed, "--save-total-limit", "3", "--resume")
    check(p.returncode == 0, f"--resume failed: {p.stderr}")
    check("resuming from" in p.stdout, f"no resume line: {p.stdout}")
    check(model_bytes(killed) == model_bytes(full), "resumed final model.safetensors differs from the uninterrupted run")
    check(metrics(killed) == full_metrics, "resumed metrics.jsonl differs from the uninterrupted run")
    kept = sorted(d for d in os.listdir(killed) if d.startswith("checkpoint-"))
    check(kept == ["checkpoint-14", "checkpoint-16", "checkpoint-18"], f"--save-total-limit 3 kept {kept}")
    print("  ok   final model bytes and metrics identical; newest 3 checkpoints kept")

    print("--resume-from a checkpoint into a new directory")
    other = os.path.join(TMP, "other")
    p = run(*common, "-o", other, "--resume-from", os.path.join(full, "checkpoint-8"))
    check(p.returncode == 0, f"--resume-from failed: {p.stderr}")
    check(model_bytes(other) == model_bytes(full), "--resume-from: final model differs")
    check(metrics(other) == [r for r in full_metrics if r["step"] > 8], "--resume-from: metrics rows differ")
    print("  ok   same final model; metrics from step 9 on")

    print("refusals")
    for flag, value in [("--lr", "1e-3"), ("--seed", "7"), ("--batch-size", "3"), ("--max-seq-length", "100")]:
        args = list(common)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
        p = run(*args, "-o", full, "--resume")
        check(p.returncode == 1 and flag in p.stderr and "checkpoint" in p.stderr,
              f"resume with a different {flag}: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    p = run(*common, "-o", full)
    check(p.returncode == 1 and "--resume" in p.stderr and "checkpoint-" in p.stderr,
          f"fresh run over old checkpoints: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    print("  ok   differing options and a fresh run over checkpoints refused")

    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
