"""`tulu dpo` end to end on a tiny `tulu init` model and generated preference pairs:

- learning: on memorizable pairs (chosen = the right sum, rejected = a wrong one), the first
  step's loss is ln 2 with zero rewards (policy = reference), and after training the loss is
  well below ln 2 and rewards/accuracies rises to >= 0.9 (train and eval rows);
- metrics.jsonl: every TRL field on every training row, every eval_ field on eval rows,
  epoch = step / steps per epoch, num_tokens cumulative (= k x the data's completion tokens);
- the three reference modes (frozen copy, --ref-model DIR, --precompute-ref FILE) give the
  same metrics (<= 1e-6 relative) on every step; the precompute file is reused when it
  matches and recomputed when --max-length changes;
- every loss type (sigmoid, ipo, hinge, dpo_norm, simpo, conservative sigmoid) trains and
  logs finite metrics; simpo's rewards are beta x the averaged policy log-probs (not 0 at
  step 1, since it has no reference);
- --dump-grads: FILE.safetensors has every parameter's finite gradient under its HF name, and
  FILE.batch.json lists the step's pairs (prompt/chosen/rejected ids, completions ending in
  </s>, micro_batch indices) — the ids equal `tulu dpo-data`'s;
- --dump-grads gradient = PyTorch autograd (tests/reference: open-instruct's concatenated
  forward in float64, the loss of dpo_loss_reference.py, mean over the step's pairs) within
  1e-4 relative per parameter, for sigmoid against another --ref-model, dpo_norm with label
  smoothing and ipo (2 micro-batches of 2 pairs);
- resume: a run stopped after its checkpoint (later checkpoints, the final model and the later
  metrics rows removed, a partial metrics line left as a kill leaves it) and resumed gives a
  bit-identical model and metrics.jsonl;
- resume after SIGKILL: a 40-step run killed once its checkpoint-5 exists, then --resume:
  the same model bytes and metrics.jsonl as the uninterrupted run;
- the output loads in `tulu generate`.
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import torch

from dpo_loss_reference import pair_loss
from hf_checkpoint import read_model_dir, read_safetensors
from hf_llama_train import TrainReference

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "dpo_cli")
LN2 = math.log(2.0)
TRL_FIELDS = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
              "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected"]
ROW_FIELDS = set(TRL_FIELDS) | {"step", "epoch", "learning_rate", "grad_norm", "num_tokens"}
EVAL_FIELDS = {"eval_" + f for f in TRL_FIELDS} | {"step", "epoch"}

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print("  FAIL", message)
    return cond


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def dpo(model, data, out, *args):
    if out:
        shutil.rmtree(out, ignore_errors=True)
    p = tulu("dpo", "-m", model, "--data", data, *(["-o", out] if out else []), "-t", "2",
             "--no-progress", *args)
    assert p.returncode == 0, f"tulu dpo {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if "loss" in r], [r for r in rows if "eval_loss" in r]


def pairs(n, offset=0):
    rows = []
    for i in range(offset, offset + n):
        a, b = 3 + i, 11 + 2 * i
        rows.append({"prompt": f"What is {a} plus {b}?", "chosen": f"The answer is {a + b}.",
                     "rejected": f"I think it is {a + b + 7} maybe"})
    return rows


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def reference_dpo_grads(model, ref_model, batch, loss, beta, smoothing):
    config = json.load(open(os.path.join(model, "config.json")))
    policy = TrainReference(config, read_model_dir(model))
    reference = TrainReference(config, read_model_dir(ref_model))
    micro = {}
    for row in batch:
        micro.setdefault(row["micro_batch"], []).append(row)
    total = 0.0
    for k in sorted(micro):
        pc, pr, tc, tr, _, _ = policy.concatenated_logps(micro[k])
        with torch.no_grad():
            rc, rr, _, _, _, _ = reference.concatenated_logps(micro[k])
        losses = pair_loss(loss, beta, smoothing, 0.3, pc.double(), pr.double(), rc.double(), rr.double(),
                           tc.double(), tr.double())[0]
        step_loss = losses.sum() / len(batch)
        step_loss.backward()
        total += float(step_loss)
    return {n: p.grad for n, p in policy.params.items()}, total


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    model = os.path.join(TMP, "model")
    p = tulu("init", "-o", model, "--hidden-size", "32", "--intermediate-size", "64", "--layers", "2",
             "--heads", "4", "--kv-heads", "2", "--seed", "5")
    assert p.returncode == 0, p.stderr
    data = os.path.join(TMP, "prefs.jsonl")
    write_jsonl(data, pairs(12))
    # The tokenized pairs as the data layer gives them (the dump and token counts use them).
    p = tulu("dpo-data", "-m", model, "--data", data)
    assert p.returncode == 0, p.stderr
    encoded = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(encoded) == 12
    completion_tokens = sum(len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in encoded)

    print("learning on memorizable pairs (sigmoid, 12 pairs, 3 steps per epoch, 8 epochs)")
    out = os.path.join(TMP, "learn")
    dpo(model, data, out, "--lr", "2e-3", "--epochs", "8", "--batch-size", "2",
        "--effective-batch", "4", "--eval-data", data, "--eval-every", "6")
    rows, evals = read_metrics(out)
    check(len(rows) == 24, f"expected 24 training rows, got {len(rows)}")
    for r in rows:
        check(set(r) == ROW_FIELDS, f"row fields {sorted(set(r) ^ ROW_FIELDS)} differ at step {r.get('step')}")
        check(all(math.isfinite(r[k]) for k in ROW_FIELDS), f"non-finite value in step {r['step']}")
        check(abs(r["epoch"] - r["step"] / 3) < 1e-12, f"epoch {r['epoch']} at step {r['step']}")
    for k in (3, 6, 24):
        check(rows[k - 1]["num_tokens"] == completion_tokens * k // 3,
              f"num_tokens after {k // 3} epochs: {rows[k - 1]['num_tokens']}, expected "
              f"{completion_tokens * k // 3}")
    first, last = rows[0], rows[-1]
    check(abs(first["loss"] - LN2) < 1e-9, f"first loss {first['loss']} is not ln 2 (policy = reference)")
    check(first["rewards/chosen"] == 0 and first["rewards/margins"] == 0, "first rewards not 0")
    check(last["loss"] < 0.6 * LN2, f"last loss {last['loss']} not well below ln 2")
    check(last["rewards/accuracies"] >= 0.9, f"last rewards/accuracies {last['rewards/accuracies']}")
    check(last["rewards/margins"] > 0 and last["rewards/chosen"] > last["rewards/rejected"],
          "chosen rewards do not exceed rejected")
    check(abs(last["rewards/margins"] - (last["rewards/chosen"] - last["rewards/rejected"])) < 1e-9,
          "margin != chosen - rejected")
    check([e["step"] for e in evals] == [6, 12, 18, 24], f"eval steps {[e['step'] for e in evals]}")
    for e in evals:
        check(set(e) == EVAL_FIELDS, f"eval fields differ: {sorted(set(e) ^ EVAL_FIELDS)}")
    check(evals[-1]["eval_rewards/accuracies"] >= 0.9 and evals[-1]["eval_loss"] < 0.6 * LN2,
          f"final eval {evals[-1]}")
    print(f"  loss {first['loss']:.4f} -> {last['loss']:.4f}, accuracy {first['rewards/accuracies']} -> "
          f"{last['rewards/accuracies']}, eval accuracy {evals[-1]['eval_rewards/accuracies']}")

    g = tulu("generate", "-m", out, "--chat", "-p", "What is 3 plus 11?", "-n", "4")
    check(g.returncode == 0, f"tulu generate on the output failed: {g.stderr}")

    print("reference modes: frozen copy, --ref-model, --precompute-ref (sigmoid and ipo)")
    for loss in ("sigmoid", "ipo"):
        common = ["--lr", "1e-3", "--max-steps", "4", "--batch-size", "3", "--effective-batch", "6",
                  "--loss", loss, "--eval-data", data, "--eval-every", "2"]
        cache = os.path.join(TMP, f"ref-{loss}.json")
        if os.path.exists(cache):
            os.remove(cache)
        runs = {}
        for name, extra in (("frozen", []), ("ref-model", ["--ref-model", model]),
                            ("precompute", ["--precompute-ref", cache]),
                            ("precompute-reused", ["--precompute-ref", cache])):
            o = os.path.join(TMP, f"mode-{loss}-{name}")
            p = dpo(model, data, o, *common, *extra)
            if name == "precompute":
                check("written to" in p.stdout, f"precompute did not write the file: {p.stdout}")
            if name == "precompute-reused":
                check("reused from" in p.stdout, f"precompute file not reused: {p.stdout}")
            runs[name] = read_metrics(o)
        base_rows = runs["frozen"][0] + runs["frozen"][1]
        for name, (r, e) in runs.items():
            other = r + e
            check(len(other) == len(base_rows), f"{loss}/{name}: {len(other)} rows")
            worst = max(rel(a[k], b[k]) for a, b in zip(base_rows, other) for k in a if k in b)
            check(worst <= 1e-6, f"{loss}/{name}: metrics differ from the frozen copy by {worst:.3g}")
    # A changed --max-length changes the pairs' identity: the file is recomputed.
    p = dpo(model, data, os.path.join(TMP, "mode-recompute"), "--max-steps", "1", "--max-length", "40",
            "--precompute-ref", os.path.join(TMP, "ref-sigmoid.json"))
    check("recomputing" in p.stdout and "max-length" in p.stdout, f"no recompute on a changed --max-length: {p.stdout}")

    print("every loss type")
    for loss, extra in (("sigmoid", ["--label-smoothing", "0.1"]), ("hinge", []), ("dpo_norm", []),
                        ("simpo", ["--simpo-gamma", "0.5"]), ("ipo", [])):
        o = os.path.join(TMP, f"loss-{loss}")
        dpo(model, data, o, "--loss", loss, "--lr", "2e-3", "--max-steps", "12", "--batch-size", "2",
            "--effective-batch", "4", *extra)
        rows, _ = read_metrics(o)
        check(all(math.isfinite(r[k]) for r in rows for k in ROW_FIELDS), f"{loss}: non-finite metric")
        check(rows[-1]["rewards/margins"] > rows[0]["rewards/margins"],
              f"{loss}: margin did not grow ({rows[0]['rewards/margins']} -> {rows[-1]['rewards/margins']})")
        if loss == "simpo":
            check(rows[0]["rewards/chosen"] < 0 and abs(rows[0]["rewards/chosen"] - 0.1 * rows[0]["logps/chosen"]) < 1e-9,
                  f"simpo reward is not beta x averaged logp: {rows[0]}")
        if loss == "dpo_norm":
            check(rows[0]["logps/chosen"] > -20, f"dpo_norm logps not averaged: {rows[0]['logps/chosen']}")

    print("--dump-grads")
    dump = os.path.join(TMP, "g.safetensors")
    p = dpo(model, data, None, "--dump-grads", dump, "--batch-size", "2", "--effective-batch", "4")
    grads = read_safetensors(dump)
    weights = read_safetensors(os.path.join(model, "model.safetensors"))
    check(set(grads) == set(weights), "gradient names differ from the model's tensors")
    check(all(grads[k].shape == weights[k].shape for k in grads), "gradient shapes differ")
    check(all(bool(grads[k].isfinite().all()) for k in grads), "non-finite gradient")
    check(sum(float(grads[k].abs().sum()) for k in grads) > 0, "all-zero gradient")
    with open(os.path.join(TMP, "g.batch.json")) as f:
        batch = json.load(f)
    check(len(batch) == 4 and [b["micro_batch"] for b in batch] == [0, 0, 1, 1],
          f"batch.json rows/micro-batches: {[b.get('micro_batch') for b in batch]}")
    by_prompt = {tuple(e["prompt_ids"]): e for e in encoded}
    for b in batch:
        e = by_prompt.get(tuple(b["prompt_ids"]))
        check(e is not None and e["chosen_ids"] == b["chosen_ids"] and e["rejected_ids"] == b["rejected_ids"],
              "batch.json pair differs from tulu dpo-data's")
        check(b["chosen_ids"][-1] == 2 and b["rejected_ids"][-1] == 2, "completion does not end in </s>")

    print("--dump-grads against PyTorch autograd")
    other = os.path.join(TMP, "other")
    p = tulu("init", "-o", other, "--hidden-size", "32", "--intermediate-size", "64", "--layers", "2",
             "--heads", "4", "--kv-heads", "2", "--seed", "9")
    assert p.returncode == 0, p.stderr
    for loss, ref_model, extra in (("sigmoid", other, ["--ref-model", other]),
                                   ("dpo_norm", model, ["--label-smoothing", "0.1"]),
                                   ("ipo", other, ["--ref-model", other, "--beta", "0.5"])):
        beta = 0.5 if loss == "ipo" else 0.1
        smoothing = 0.1 if loss == "dpo_norm" else 0.0
        p = dpo(model, data, None, "--dump-grads", dump, "--batch-size", "2", "--effective-batch", "4",
                "--loss", loss, *extra)
        ours = read_safetensors(dump)
        with open(os.path.join(TMP, "g.batch.json")) as f:
            batch = json.load(f)
        want, want_loss = reference_dpo_grads(model, ref_model, batch, loss, beta, smoothing)
        check(set(ours) == set(want), f"{loss}: gradient names differ")
        worst, worst_name = 0.0, ""
        for name, g in want.items():
            err = float((ours[name].double() - g.double()).norm() / max(float(g.double().norm()), 1e-30))
            if err > worst:
                worst, worst_name = err, name
        print(f"  {loss}: reference loss {want_loss:.6f}; worst relative gradient error {worst:.2e} ({worst_name})")
        check(f"loss {want_loss:.6f}" in p.stdout or abs(float(p.stdout.split("loss ")[1].split(",")[0]) - want_loss) < 1e-5,
              f"{loss}: dumped loss differs: {p.stdout.strip()} vs {want_loss}")
        check(worst <= 1e-4, f"{loss}: gradient {worst_name} relative error {worst:.2e}")

    print("resume from a checkpoint after a stop")
    common = ["--lr", "1e-3", "--max-steps", "6", "--batch-size", "2", "--effective-batch", "4",
              "--save-every", "3", "--eval-data", data, "--eval-every", "2"]
    full = os.path.join(TMP, "full")
    dpo(model, data, full, *common)
    stopped = os.path.join(TMP, "stopped")
    shutil.copytree(full, stopped)
    for name in os.listdir(stopped):
        if name not in ("checkpoint-3", "metrics.jsonl"):
            path = os.path.join(stopped, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with open(os.path.join(full, "metrics.jsonl")) as f:
        lines = f.readlines()
    kept = [l for l in lines if json.loads(l)["step"] <= 4]
    with open(os.path.join(stopped, "metrics.jsonl"), "w") as f:
        f.writelines(kept)
        f.write(lines[len(kept)][:20])  # a kill mid-write
    p = tulu("dpo", "-m", model, "--data", data, "-o", stopped, "-t", "2", "--no-progress", *common, "--resume")
    check(p.returncode == 0, f"resume failed: {p.stderr}")
    check("resuming from" in p.stdout and "step 3 of 6" in p.stdout, f"resume message: {p.stdout}")
    for name in ("model.safetensors", "metrics.jsonl"):
        with open(os.path.join(full, name), "rb") as a, open(os.path.join(stopped, name), "rb") as b:
            check(a.read() == b.read(), f"resumed {name} differs from the uninterrupted run")
    p = tulu("dpo", "-m", model, "--data", data, "-o", stopped, "-t", "2", "--no-progress",
             *common[:-4], "--beta", "0.2", "--resume-from", os.path.join(stopped, "checkpoint-3"))
    check(p.returncode == 1 and "--beta" in p.stderr, f"resume with another --beta: {p.returncode} {p.stderr}")

    print("resume after SIGKILL")
    common = ["-t", "2", "--no-progress", "--lr", "1e-3", "--max-steps", "40", "--batch-size", "2",
              "--effective-batch", "4", "--save-every", "5", "--save-total-limit", "2"]
    full = os.path.join(TMP, "kill-full")
    dpo(model, data, full, *common[2:])
    killed = os.path.join(TMP, "killed")
    shutil.rmtree(killed, ignore_errors=True)
    proc = subprocess.Popen([TULU, "dpo", "-m", model, "--data", data, "-o", killed, *common],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(os.path.join(killed, "checkpoint-5")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    check(proc.returncode == -signal.SIGKILL, f"the run was not killed mid-way (exit {proc.returncode})")
    check(not os.path.exists(os.path.join(killed, "model.safetensors")), "the killed run wrote its final model")
    p = tulu("dpo", "-m", model, "--data", data, "-o", killed, *common, "--resume")
    check(p.returncode == 0 and "resuming from" in p.stdout, f"resume after kill failed: {p.stderr}")
    print(f"  {p.stdout.strip().splitlines()[-2] if p.returncode == 0 else ''}")
    for name in ("model.safetensors", "metrics.jsonl"):
        with open(os.path.join(full, name), "rb") as a, open(os.path.join(killed, name), "rb") as b:
            check(a.read() == b.read(), f"after kill + resume, {name} differs from the uninterrupted run")

    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all DPO CLI checks passed")


if __name__ == "__main__":
    main()
