"""`tulu eval prefs` against an independent PyTorch reference.

Reference: the pairs are tokenized by tests/reference/open_instruct_dpo_encode.py (open-instruct's
Tulu rendering, TRL's prompt/answer split and keep_end truncation) with Python SentencePiece
(tokenizer_sp_reference.py, HF's slow LlamaTokenizer); their completion log-probs come from
tests/reference/hf_llama_train.py's concatenated_logps (open-instruct's concatenated_forward +
_get_batch_logps: Hugging Face Llama semantics in float64, Σ log_softmax over the completion
labels). Every report field is recomputed here from those log-probs (TRL's DPO definitions).

Runs (random HF checkpoints from tests/reference/hf_checkpoint.py; rows in both data forms,
system and multi-turn prompts, a prompt and a completion cut by --max-length /
--max-prompt-length, one pair with identical chosen and rejected):
  F32 policy alone                  per-pair log-probs ≤ 1e-4 relative, every report field, the
                                    reward fields absent
  F32 policy + F32 --ref-model      the same plus the per-pair rewards and reward fields; the
                                    table on stdout carries every number
  BF16 policy + F32 --ref-model     against the reference run on the BF16 weights (upcast)
  --json - --limit 3                stdout is the report JSON (no table) for the first 3 pairs
  Q8_0 GGUF (`tulu quantize`)       against the F32 reference: looser bound Q8_BOUND (the
                                    quantization error, not tulu's)
Every bound measured is printed.
"""

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import torch

import hf_checkpoint
from hf_llama_train import TrainReference
from open_instruct_dpo_encode import encode_pair
from tokenizer_sp_reference import SentencePieceLegacyReference

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "eval_prefs")
TOKENIZER_MODEL = os.path.join(hf_checkpoint.TOKENIZER_DIR, "tokenizer.model")

# tulu: fp32 forward with float64 log-softmax; reference: float64 throughout. Relative to
# max(|logp|, 1). Measured ≈ 1e-7 (see the printed figures).
TOLERANCE = 1e-4
# Q8_0 weights vs the F32 reference: the quantization error of every weight (≈ 0.4 % of a
# block's max) moves each token's log-prob by ≈ 1e-2; summed over ≤ 30 tokens of |log p| ≈ 10.
# Measured ≈ 2e-3 relative (printed).
Q8_BOUND = 2e-2
BETA = 0.25
TRUNCATION = ["--max-length", "64", "--max-prompt-length", "24"]

WORDS = ("answer the question with one word: red green blue seven eleven paris rome yes no maybe "
         "because the sky is clear and the river is long — naïve café 東京").split()

failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        failures.append(message)


def sentence(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def make_rows(seed=11):
    rng = random.Random(seed)
    rows = []
    for i in range(9):
        kind = i % 3
        if kind == 0:
            rows.append({"prompt": sentence(rng, 2, 8), "chosen": sentence(rng, 1, 8),
                         "rejected": sentence(rng, 1, 10)})
        else:
            prompt = []
            if kind == 2:
                prompt.append({"role": "system", "content": sentence(rng, 2, 5)})
            prompt.append({"role": "user", "content": sentence(rng, 2, 6)})
            if i == 4:  # a multi-turn prompt
                prompt += [{"role": "assistant", "content": sentence(rng, 1, 4)},
                           {"role": "user", "content": sentence(rng, 1, 4)}]
            rows.append({"prompt": prompt[-1]["content"], "prompt_id": f"p{i}", "score_chosen": 8.0,
                         "chosen": prompt + [{"role": "assistant", "content": sentence(rng, 1, 8)}],
                         "rejected": prompt + [{"role": "assistant", "content": sentence(rng, 1, 8)}]})
    same = sentence(rng, 3, 6)
    rows.append({"prompt": sentence(rng, 2, 5), "chosen": same, "rejected": same})  # a tie
    rows.append({"prompt": sentence(rng, 50, 54), "chosen": sentence(rng, 2, 4),
                 "rejected": sentence(rng, 1, 3)})  # prompt cut to --max-prompt-length
    rows.append({"prompt": sentence(rng, 2, 3), "chosen": sentence(rng, 40, 45),
                 "rejected": sentence(rng, 3, 5)})  # completions cut to what the prompt leaves
    return rows


def write_rows(path, rows):
    """Rows with a blank line after the third (line numbers must still match)."""
    lines = []
    for i, row in enumerate(rows):
        lines.append(json.dumps(row, ensure_ascii=False))
        if i == 2:
            lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return [i + 1 for i, line in enumerate(lines) if line.strip()]


def reference_pairs(rows, line_numbers, tokenizer, max_length, max_prompt_length):
    pairs = []
    for row, line in zip(rows, line_numbers):
        pair = encode_pair(row, tokenizer.encode, max_length, max_prompt_length)
        if pair["kept"]:
            pair["line"] = line
            pairs.append(pair)
    return pairs


def reference_logps(config, model_dir, pairs):
    """[(chosen_logp, rejected_logp, chosen_tokens, rejected_tokens)] in float64, two pairs per
    padded batch (bounds the [rows, T, 32000] float64 logits)."""
    model = TrainReference(config, hf_checkpoint.read_model_dir(model_dir))
    out = []
    with torch.no_grad():
        for i in range(0, len(pairs), 2):
            c, r, nc, nr, _, _ = model.concatenated_logps(pairs[i:i + 2])
            out += [(float(c[k]), float(r[k]), int(nc[k]), int(nr[k])) for k in range(len(c))]
    return out


def expected_report(policy, reference, beta):
    n = len(policy)
    report = {"pairs": n, "has_reference": reference is not None, "beta": beta,
              "mean_logp_chosen": sum(p[0] for p in policy) / n,
              "mean_logp_rejected": sum(p[1] for p in policy) / n,
              "mean_token_logp_chosen": sum(p[0] / p[2] for p in policy) / n,
              "mean_token_logp_rejected": sum(p[1] / p[3] for p in policy) / n,
              "logp_accuracy": sum(p[0] > p[1] for p in policy) / n,
              "token_logp_accuracy": sum(p[0] / p[2] > p[1] / p[3] for p in policy) / n,
              "logp_ties": sum(p[0] == p[1] for p in policy)}
    if reference is not None:
        rewards = [(beta * (p[0] - r[0]), beta * (p[1] - r[1])) for p, r in zip(policy, reference)]
        logits = torch.tensor([(p[0] - p[1]) - (r[0] - r[1]) for p, r in zip(policy, reference)],
                              dtype=torch.float64)
        report.update({"reward_accuracy": sum(c > r for c, r in rewards) / n,
                       "mean_margin": sum(c - r for c, r in rewards) / n,
                       "mean_reward_chosen": sum(c for c, _ in rewards) / n,
                       "mean_reward_rejected": sum(r for _, r in rewards) / n,
                       "dpo_loss": float(-torch.nn.functional.logsigmoid(beta * logits).mean())})
    return report


def snap_ties(pairs, scores):
    """The reference's float64 batches may round identical rows differently; a pair whose chosen
    and rejected ids are identical is a tie by definition (tulu scores both sides identically).
    Every other pair must be far from a tie so that the strict accuracies are well defined."""
    out = []
    for pair, (c, r, nc, nr) in zip(pairs, scores):
        if pair["chosen_ids"] == pair["rejected_ids"]:
            r = c
        else:
            assert abs(c - r) > 1e-3 and abs(c / nc - r / nr) > 1e-4, "a near-tie makes accuracy fragile"
        out.append((c, r, nc, nr))
    return out


def rel(a, b):
    return abs(a - b) / max(abs(b), 1.0)


def run(args):
    result = subprocess.run([TULU] + args, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"tulu {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compare_run(label, tulu_rows, report, pairs, policy, reference, bound):
    """Per-pair rows and the report of one tulu run against the reference log-probs."""
    check([row["line"] for row in tulu_rows] == [p["line"] for p in pairs],
          f"{label}: pairs and line numbers {[p['line'] for p in pairs]}")
    worst = 0.0
    for row, pair, pol, ref in zip(tulu_rows, pairs, policy, reference or [None] * len(pairs)):
        if (row["chosen_tokens"], row["rejected_tokens"]) != (pol[2], pol[3]):
            check(False, f"{label}: line {row['line']} token counts {row['chosen_tokens']}/"
                         f"{row['rejected_tokens']}, reference {pol[2]}/{pol[3]}")
        worst = max(worst, rel(row["chosen_logp"], pol[0]), rel(row["rejected_logp"], pol[1]))
        if ref is not None:
            worst = max(worst, rel(row["ref_chosen_logp"], ref[0]), rel(row["ref_rejected_logp"], ref[1]))
            for key, value in (("reward_chosen", BETA * (pol[0] - ref[0])),
                               ("reward_rejected", BETA * (pol[1] - ref[1]))):
                if abs(row[key] - value) > bound * BETA * max(abs(pol[0]), abs(ref[0]), 1.0) * 2:
                    check(False, f"{label}: line {row['line']} {key} {row[key]} vs {value}")
        elif any(k in row for k in ("ref_chosen_logp", "reward_chosen")):
            check(False, f"{label}: reference fields without --ref-model")
        if pair["chosen_ids"] == pair["rejected_ids"] and row["chosen_logp"] != row["rejected_logp"]:
            check(False, f"{label}: line {row['line']}: identical sides scored differently")
    check(worst <= bound, f"{label}: per-pair log-probs, {len(pairs)} pairs: max relative error "
                          f"{worst:.2e} (bound {bound:.0e})")

    expected = expected_report(policy, reference, BETA)
    check(sorted(report) == sorted(expected), f"{label}: report fields {sorted(report)}")
    worst_field, worst_name = 0.0, ""
    for key, value in expected.items():
        if key not in report:
            continue
        if isinstance(value, (bool, int)) or key.endswith("accuracy"):
            # Counts are exact; under quantization (the loose bound) a close pair may flip.
            if report[key] != value and bound == TOLERANCE:
                check(False, f"{label}: {key} = {report[key]}, reference {value}")
            continue
        # Rewards and margins are β·(differences of log-probs): bounded relative to the log-probs.
        scale = BETA * max(abs(p[0]) for p in policy) if "reward" in key or "margin" in key or key == "dpo_loss" \
            else 1.0
        err = abs(report[key] - value) / max(abs(value), scale, 1e-12)
        if err > worst_field:
            worst_field, worst_name = err, key
    exact = "accuracies, ties exact" if bound == TOLERANCE else "accuracies not compared"
    check(worst_field <= bound, f"{label}: report fields ({exact}): max relative error "
                                f"{worst_field:.2e} ({worst_name})")


def check_table(label, table, report):
    values = {}
    for line in table.splitlines()[2:]:
        parts = line.split()
        values[parts[0]] = float(parts[1])
    for key, value in report.items():
        if key in ("has_reference", "beta"):
            continue
        if key not in values or abs(values[key] - value) > 5e-7 * max(1.0, abs(value)):
            check(False, f"{label}: table row {key}: {values.get(key)} vs report {value}")
            return
    check(len(values) == len(report) - 2, f"{label}: the table has every report number ({len(values)} rows)")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    config = hf_checkpoint.make_config(hidden=64, intermediate=160, layers=2, heads=4, kv_heads=2)
    dirs = {name: os.path.join(TMP, name) for name in ("policy", "ref", "policy_bf16")}
    hf_checkpoint.write_model_dir(dirs["policy"], config, hf_checkpoint.make_state_dict(config, seed=7))
    hf_checkpoint.write_model_dir(dirs["ref"], config, hf_checkpoint.make_state_dict(config, seed=8))
    bf16_config = dict(config, torch_dtype="bfloat16")
    hf_checkpoint.write_model_dir(dirs["policy_bf16"], bf16_config,
                                  hf_checkpoint.make_state_dict(bf16_config, seed=9))
    rows = make_rows()
    data = os.path.join(TMP, "prefs.jsonl")
    line_numbers = write_rows(data, rows)
    tokenizer = SentencePieceLegacyReference(TOKENIZER_MODEL)
    full = reference_pairs(rows, line_numbers, tokenizer, 8192, None)
    cut = reference_pairs(rows, line_numbers, tokenizer, 64, 24)
    prompt_cut, completion_cut = cut[-2], cut[-1]
    check(len(full) == len(rows) and len(cut) == len(rows) and len(prompt_cut["prompt_ids"]) == 24
          and len(full[-2]["prompt_ids"]) > 24 and completion_cut["chosen_ids"] != full[-1]["chosen_ids"]
          and completion_cut["chosen_ids"][-1] != 2,
          f"{len(rows)} pairs; --max-length 64 --max-prompt-length 24 cuts "
          f"{sum(a != b for a, b in zip(full, cut))} of them (a prompt to 24 tokens, a completion before </s>)")
    logps = {name: snap_ties(full, reference_logps(config, d, full)) for name, d in
             (("policy", dirs["policy"]), ("ref", dirs["ref"]))}
    cut_logps = {name: snap_ties(cut, reference_logps(config, d, cut)) for name, d in dirs.items()}
    common = ["--data", data, "-t", "2", "--no-progress", "--beta", str(BETA)]

    print("F32 policy, no reference, no truncation")
    pp, js = os.path.join(TMP, "a.jsonl"), os.path.join(TMP, "a.json")
    run(["eval", "prefs", "-m", dirs["policy"], *common, "--per-pair", pp, "--json", js])
    with open(js) as f:
        compare_run("F32", read_jsonl(pp), json.load(f), full, logps["policy"], None, TOLERANCE)

    print("F32 policy + F32 reference, --max-length 64 --max-prompt-length 24")
    pp, js = os.path.join(TMP, "b.jsonl"), os.path.join(TMP, "b.json")
    result = run(["eval", "prefs", "-m", dirs["policy"], "--ref-model", dirs["ref"], *common, *TRUNCATION,
                  "--per-pair", pp, "--json", js])
    with open(js) as f:
        report = json.load(f)
    compare_run("F32 + ref", read_jsonl(pp), report, cut, cut_logps["policy"], cut_logps["ref"], TOLERANCE)
    check_table("F32 + ref", result.stdout, report)
    print("\n".join("    | " + line for line in result.stdout.splitlines()))

    print("BF16 policy + F32 reference")
    pp, js = os.path.join(TMP, "c.jsonl"), os.path.join(TMP, "c.json")
    run(["eval", "prefs", "-m", dirs["policy_bf16"], "--ref-model", dirs["ref"], *common, *TRUNCATION,
         "--per-pair", pp, "--json", js])
    with open(js) as f:
        compare_run("BF16 + ref", read_jsonl(pp), json.load(f), cut, cut_logps["policy_bf16"],
                    cut_logps["ref"], TOLERANCE)

    print("--json - --limit 3")
    result = run(["eval", "prefs", "-m", dirs["policy"], *common, *TRUNCATION, "--json", "-", "--limit", "3"])
    try:
        report = json.loads(result.stdout)
        expected = expected_report(cut_logps["policy"][:3], None, BETA)
        check(report["pairs"] == 3 and all(abs(report[k] - v) <= TOLERANCE * max(1.0, abs(v))
                                           for k, v in expected.items()),
              f"stdout is the report JSON of the first 3 pairs (pairs {report['pairs']})")
    except (ValueError, KeyError) as e:
        check(False, f"--json - output does not parse: {e}: {result.stdout[:200]!r}")

    print("Q8_0 GGUF policy vs the F32 reference")
    gguf = os.path.join(TMP, "policy-q8_0.gguf")
    run(["quantize", dirs["policy"], gguf, "--type", "q8_0"])
    pp, js = os.path.join(TMP, "d.jsonl"), os.path.join(TMP, "d.json")
    run(["eval", "prefs", "-m", gguf, "--ref-model", dirs["ref"], *common, *TRUNCATION, "--per-pair", pp,
         "--json", js])
    with open(js) as f:
        compare_run("Q8_0 + ref", read_jsonl(pp), json.load(f), cut, cut_logps["policy"], cut_logps["ref"],
                    Q8_BOUND)

    if failures:
        print(f"FAILED ({len(failures)}):\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
