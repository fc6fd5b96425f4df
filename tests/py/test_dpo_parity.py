"""DPO parity: `tulu dpo` gradients and metrics against PyTorch, for every loss type.

Reference: tests/reference/hf_llama_train.py (Hugging Face Llama semantics, float64 from float32
parameters) with open-instruct's concatenated_forward / _get_batch_logps (chosen and rejected rows
padded into one batch, Σ log-softmax over the completion labels), and the loss family of
tests/reference/dpo_loss_reference.py (open-instruct dpo_loss / simpo_loss, TRL ipo / hinge).

For each loss type, on a random policy and a different random reference checkpoint:
  gradients   `tulu dpo --dump-grads` (2 pairs per micro-batch, 2 micro-batches): the gradient of
              the mean pair loss of that step; every parameter within ‖Δg‖/‖g‖ ≤ 1e-4;
  metrics     one full-batch step (`--max-steps 1`): loss, rewards/chosen, rewards/rejected,
              rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, logits/chosen,
              logits/rejected within 1e-4 relative (absolute for values near 0).
Every figure is printed.
"""

import json
import os
import random
import subprocess
import sys
import tempfile

import torch

import hf_checkpoint
from dpo_loss_reference import pair_loss
from hf_llama_train import TrainReference

TOLERANCE = 1e-4
BETA, LABEL_SMOOTHING, GAMMA_BETA_RATIO = 0.1, 0.0, 0.3
TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "dpo_parity")

WORDS = ("answer the question with one word: red green blue seven eleven paris rome yes no maybe "
         "because the sky is clear and the river is long — naïve café 東京").split()

# loss type, label smoothing, use a separate reference checkpoint
CASES = [("sigmoid", 0.0, True), ("sigmoid", 0.1, True), ("ipo", 0.0, True), ("hinge", 0.0, True),
         ("dpo_norm", 0.0, True), ("simpo", 0.0, False), ("sigmoid", 0.0, False)]


def sentence(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def write_pairs(path, n, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i % 2 == 0:
                row = {"prompt": sentence(rng, 3, 8), "chosen": sentence(rng, 1, 6), "rejected": sentence(rng, 1, 9)}
            else:
                prompt = [{"role": "user", "content": sentence(rng, 2, 6)}]
                row = {"prompt": prompt[0]["content"], "prompt_id": f"p{i}",
                       "chosen": prompt + [{"role": "assistant", "content": sentence(rng, 1, 7)}],
                       "rejected": prompt + [{"role": "assistant", "content": sentence(rng, 1, 7)}]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(args):
    result = subprocess.run([TULU] + args, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit(f"tulu {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def reference_step(policy, ref, pairs, loss_type, smoothing):
    """Mean pair loss over `pairs` (with autograd on policy) and the per-pair pieces."""
    pc, pr, nc, nr, mc, mr = policy.concatenated_logps(pairs)
    with torch.no_grad():
        rc, rr, _, _, _, _ = ref.concatenated_logps(pairs)
    losses, rew_c, rew_r, used_c, used_r = pair_loss(loss_type, BETA, smoothing, GAMMA_BETA_RATIO, pc, pr,
                                                     rc.detach(), rr.detach(), nc.double(), nr.double())
    return losses, rew_c, rew_r, used_c, used_r, mc, mr, nc, nr


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-3)


def main():
    os.makedirs(TMP, exist_ok=True)
    config = hf_checkpoint.make_config(hidden=64, intermediate=160, layers=2, heads=4, kv_heads=2)
    policy_dir, ref_dir = os.path.join(TMP, "policy"), os.path.join(TMP, "ref")
    hf_checkpoint.write_model_dir(policy_dir, config, hf_checkpoint.make_state_dict(config, seed=7))
    hf_checkpoint.write_model_dir(ref_dir, config, hf_checkpoint.make_state_dict(config, seed=8))
    data = os.path.join(TMP, "prefs.jsonl")
    write_pairs(data, 8, seed=3)
    failures = []
    for index, (loss_type, smoothing, separate_ref) in enumerate(CASES):
        name = f"{loss_type}_ls{smoothing}_{'ref' if separate_ref else 'self'}"
        common = ["--loss", loss_type, "--beta", str(BETA), "--label-smoothing", str(smoothing), "--no-progress",
                  "--max-length", "128", "-t", "2"]
        if loss_type == "simpo":
            common += ["--simpo-gamma", str(GAMMA_BETA_RATIO)]
        if separate_ref:
            common += ["--ref-model", ref_dir]
        ref = TrainReference(config, hf_checkpoint.read_model_dir(ref_dir if separate_ref else policy_dir))

        # Gradients of the first step (2 micro-batches of 2 pairs).
        grads_path = os.path.join(TMP, f"{name}.safetensors")
        run(["dpo", "-m", policy_dir, "--data", data, "-o", os.path.join(TMP, name + "-g"), "--dump-grads",
             grads_path, "--batch-size", "2", "--grad-accum", "2"] + common)
        ours = hf_checkpoint.read_safetensors(grads_path)
        with open(grads_path[: -len(".safetensors")] + ".batch.json") as f:
            pairs = json.load(f)
        policy = TrainReference(config, hf_checkpoint.read_model_dir(policy_dir))
        losses = reference_step(policy, ref, pairs, loss_type, smoothing)[0]
        losses.mean().backward()
        worst, worst_name = 0.0, ""
        for pname, p in policy.params.items():
            g = p.grad.double()
            err = float((ours[pname].double() - g).norm()) / max(float(g.norm()), 1e-30)
            if err > worst:
                worst, worst_name = err, pname
        print(f"{name}: {len(pairs)} pairs, mean loss {float(losses.mean()):.6f}: worst gradient relative "
              f"error {worst:.2e} ({worst_name})")
        if worst > TOLERANCE:
            failures.append(f"{name}: gradient {worst_name} {worst:.2e}")

        # Metrics of one full-batch step.
        out = os.path.join(TMP, name + "-m")
        run(["dpo", "-m", policy_dir, "--data", data, "-o", out, "--batch-size", "8", "--grad-accum", "1",
             "--max-steps", "1"] + common)
        with open(os.path.join(out, "metrics.jsonl")) as f:
            row = [json.loads(line) for line in f if line.strip()][0]
        all_pairs_path = os.path.join(TMP, f"{name}-all.safetensors")
        run(["dpo", "-m", policy_dir, "--data", data, "-o", out + "-d", "--dump-grads", all_pairs_path,
             "--batch-size", "8", "--grad-accum", "1"] + common)
        with open(all_pairs_path[: -len(".safetensors")] + ".batch.json") as f:
            all_pairs = json.load(f)
        policy = TrainReference(config, hf_checkpoint.read_model_dir(policy_dir))
        with torch.no_grad():
            losses, rc, rr, uc, ur, mc, mr, nc, nr = reference_step(policy, ref, all_pairs, loss_type, smoothing)
        logits_c = sum(m * float(n) for m, n in zip(mc, nc)) / float(nc.sum())
        logits_r = sum(m * float(n) for m, n in zip(mr, nr)) / float(nr.sum())
        expected = {"loss": float(losses.mean()), "rewards/chosen": float(rc.mean()),
                    "rewards/rejected": float(rr.mean()), "rewards/accuracies": float((rc > rr).double().mean()),
                    "rewards/margins": float((rc - rr).mean()), "logps/chosen": float(uc.mean()),
                    "logps/rejected": float(ur.mean()), "logits/chosen": logits_c, "logits/rejected": logits_r}
        errors = {k: rel(row[k], v) for k, v in expected.items() if k in row}
        missing = sorted(set(expected) - set(row))
        bad = {k: e for k, e in errors.items() if e > TOLERANCE}
        print(f"{name}: step-1 metrics max relative error {max(errors.values()):.1e}; "
              + ", ".join(f"{k} {row[k]:.5g}" for k in expected if k in row))
        if missing or bad:
            failures.append(f"{name}: metrics missing {missing}, off {bad}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"all {len(CASES)} cases within {TOLERANCE}")


if __name__ == "__main__":
    main()
