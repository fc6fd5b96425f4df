"""`tulu sft` end to end on tiny `tulu init` models, checked against numbers computed here
independently (SentencePiece token counts, the open-instruct step arithmetic, transformers'
schedule formulas):

- step counts: steps/epoch = ceil(ceil(rows / batch) / grad_accum) over several
  batch / accumulation / epoch / data-size combinations, with --grad-accum given and derived
  from --effective-batch (clamped to an epoch's micro-batches), and --max-steps;
- metrics.jsonl: every field on every row; epoch = step / steps_per_epoch; num_tokens is
  cumulative and equals k x (the data's target tokens) at the end of epoch k;
- learning_rate per step = linear / cosine / constant with warm-up (ratio and steps);
- a memorizable data set: the loss falls to under half its first value, and the first loss
  of a freshly initialised model (std 0.02 weights: near-uniform logits) is ln(vocab);
- gradient accumulation: the --dump-grads gradient of a 2-micro-batch step equals the mean of
  the two rows' single-row gradients (rows of different token counts: a token-weighted mean
  would differ), and FILE.batch.json holds the rows' ids and labels as SentencePiece gives;
- --checkpoint-activations: bit-identical model and metrics;
- the output: same tensor names/shapes as transformers' registry, the input dtype kept
  (bf16 in -> bf16 out), loads in `tulu generate`; eval rows at the requested steps.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys

import sentencepiece
import torch

from hf_checkpoint import param_shapes, read_model_dir, read_safetensors

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "sft_cli")
VOCAB = 32000
ROW_FIELDS = {"step", "epoch", "loss", "grad_norm", "learning_rate", "num_tokens", "mean_token_accuracy"}
EVAL_FIELDS = {"step", "epoch", "eval_loss", "eval_mean_token_accuracy", "eval_num_tokens"}

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print("  FAIL", message)
    return cond


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def init_model(path, dtype="f32"):
    shutil.rmtree(path, ignore_errors=True)
    p = tulu("init", "-o", path, "--hidden-size", "32", "--intermediate-size", "64", "--layers", "2",
             "--heads", "4", "--kv-heads", "2", "--dtype", dtype, "--seed", "3")
    assert p.returncode == 0, p.stderr


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def sft(model, data, out, *args):
    shutil.rmtree(out, ignore_errors=True)
    p = tulu("sft", "-m", model, "--data", data, "-o", out, "-t", "2", *args)
    assert p.returncode == 0, f"tulu sft {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if "loss" in r], [r for r in rows if "eval_loss" in r]


def text_rows(n, words=6):
    names = ["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "orbit", "piano", "delta"]
    return [{"text": " ".join(names[(i * 3 + j) % len(names)] for j in range(words + i % 4))} for i in range(n)]


def target_tokens(sp, rows):
    # {"text"}: ids = BOS + text + EOS, every position a target except the first (the shift).
    return sum(len(sp.encode(r["text"])) + 1 for r in rows)


def lr_formula(kind, base, s, total, warmup):
    if s < warmup:
        return base * s / max(1, warmup)
    if kind == "constant":
        return base
    progress = (s - warmup) / max(1, total - warmup)
    if kind == "linear":
        return base * max(0.0, (total - s) / max(1, total - warmup))
    return base * max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def test_step_arithmetic(model, sp):
    print("step counts, epochs, cumulative tokens")
    # (rows, batch size, grad-accum args, epochs or max steps, expected steps/epoch)
    cases = [
        (10, 3, ["--grad-accum", "2"], 2, 2),   # 4 micro-batches -> 2 steps
        (7, 2, ["--grad-accum", "3"], 3, 2),    # 4 micro-batches -> steps of 3 and 1
        (5, 1, ["--grad-accum", "1"], 1, 5),
        (6, 4, [], 2, 1),                       # effective 128 clamped to 2 micro-batches
        (9, 2, ["--effective-batch", "4"], 1, 3),  # grad accum 2 over 5 micro-batches
        (4, 1, ["--grad-accum", "9"], 2, 1),    # larger than an epoch: clamped
    ]
    for n, batch, accum, epochs, spe in cases:
        rows = text_rows(n)
        data = os.path.join(TMP, f"steps_{n}.jsonl")
        write_jsonl(data, rows)
        out = os.path.join(TMP, "steps_out")
        sft(model, data, out, "--batch-size", str(batch), *accum, "--epochs", str(epochs), "--no-progress")
        train, _ = read_metrics(out)
        total = spe * epochs
        label = f"rows {n} batch {batch} {' '.join(accum)} epochs {epochs}"
        check([r["step"] for r in train] == list(range(1, total + 1)),
              f"{label}: steps {[r['step'] for r in train]}, expected 1..{total}")
        for r in train:
            check(set(r) == ROW_FIELDS, f"{label}: step {r['step']} fields {sorted(r)}")
            check(abs(r["epoch"] - r["step"] / spe) < 1e-12, f"{label}: step {r['step']} epoch {r['epoch']}")
            check(all(math.isfinite(r[k]) for k in ("loss", "grad_norm", "learning_rate")), f"{label}: {r}")
            check(0.0 <= r["mean_token_accuracy"] <= 1.0, f"{label}: accuracy {r}")
        tokens = target_tokens(sp, rows)
        for k in range(1, epochs + 1):
            row = train[k * spe - 1]
            check(row["num_tokens"] == k * tokens,
                  f"{label}: num_tokens {row['num_tokens']} at the end of epoch {k}, expected {k * tokens}")
        check(all(a["num_tokens"] < b["num_tokens"] for a, b in zip(train, train[1:])), f"{label}: num_tokens")
        print(f"  ok   {label}: {total} steps")

    # --max-steps replaces epochs: the data is cycled and the schedule spans the given steps.
    data = os.path.join(TMP, "steps_5.jsonl")
    out = os.path.join(TMP, "steps_out")
    sft(model, data, out, "--batch-size", "2", "--grad-accum", "1", "--max-steps", "7", "--warmup-steps", "0",
        "--lr", "1e-3", "--no-progress")
    train, _ = read_metrics(out)
    check([r["step"] for r in train] == list(range(1, 8)), f"--max-steps 7: steps {[r['step'] for r in train]}")
    check(abs(train[-1]["epoch"] - 7 / 3) < 1e-12, f"--max-steps 7: epoch {train[-1]['epoch']}")
    for i, r in enumerate(train):
        want = lr_formula("linear", 1e-3, i, 7, 0)
        check(abs(r["learning_rate"] - want) <= 1e-15, f"--max-steps: lr {r['learning_rate']} != {want}")
    print("  ok   --max-steps 7 over 3 micro-batch steps per epoch")


def test_schedules(model):
    print("learning-rate schedules")
    rows = text_rows(8)
    data = os.path.join(TMP, "sched.jsonl")
    write_jsonl(data, rows)
    out = os.path.join(TMP, "sched_out")
    for kind, warm_args, warmup in [("linear", ["--warmup-ratio", "0.25"], 4), ("cosine", ["--warmup-steps", "3"], 3),
                                    ("constant", ["--warmup-steps", "2"], 2), ("linear", [], 0)]:
        # 8 rows, batch 1, accum 1, 2 epochs: 16 steps; int(16 x 0.25) = 4; default ratio 0.03 -> 0.
        sft(model, data, out, "--batch-size", "1", "--grad-accum", "1", "--lr", "3e-4", "--lr-scheduler", kind,
            *warm_args, "--no-progress")
        train, _ = read_metrics(out)
        check(len(train) == 16, f"{kind}: {len(train)} steps")
        worst = 0.0
        for i, r in enumerate(train):
            want = lr_formula(kind, 3e-4, i, 16, warmup)
            worst = max(worst, abs(r["learning_rate"] - want))
        check(worst <= 1e-15, f"{kind} warm-up {warmup}: lr off by {worst}")
        check(train[0]["learning_rate"] == (0.0 if warmup else 3e-4), f"{kind}: first lr {train[0]['learning_rate']}")
        print(f"  ok   {kind} with {warmup} warm-up steps (max |lr - formula| {worst:.1e})")


def test_memorize_and_outputs(model, bf16_model, sp):
    print("a memorizable data set; output model; eval rows")
    train_rows = [{"messages": [{"role": "user", "content": f"Say the word number {i}."},
                                {"role": "assistant", "content": w}]}
                  for i, w in enumerate(["banana", "violet", "granite", "harbor"])]
    data = os.path.join(TMP, "memo.jsonl")
    write_jsonl(data, train_rows)
    out = os.path.join(TMP, "memo_out")
    p = sft(model, data, out, "--batch-size", "2", "--grad-accum", "2", "--epochs", "20", "--lr", "1e-2",
            "--lr-scheduler", "constant", "--eval-data", data, "--eval-every", "5")
    check("steps in all" in p.stdout and "parameters" in p.stdout, f"summary missing: {p.stdout}")
    check("step 20/20" in p.stderr, f"progress line missing: {p.stderr[-300:]}")
    train, evals = read_metrics(out)
    check(len(train) == 20, f"memorize: {len(train)} steps")
    first, last = train[0]["loss"], train[-1]["loss"]
    check(abs(first - math.log(VOCAB)) < 0.05, f"first loss {first}, expected ~ln({VOCAB}) = {math.log(VOCAB):.4f}")
    check(last < 0.5 * first, f"loss did not fall: {first} -> {last}")
    check([r["step"] for r in evals] == [5, 10, 15, 20], f"eval steps {[r['step'] for r in evals]}")
    for r in evals:
        check(set(r) == EVAL_FIELDS, f"eval row fields {sorted(r)}")
    check(evals[-1]["eval_loss"] < evals[0]["eval_loss"], f"eval loss {evals[0]['eval_loss']} -> {evals[-1]['eval_loss']}")
    check(len({r["eval_num_tokens"] for r in evals}) == 1 and evals[0]["eval_num_tokens"] > 0, f"eval tokens {evals}")
    # Targets of each row: the assistant word plus "</s>" (SentencePiece, independently).
    want_eval_tokens = sum(len(sp.encode("<|assistant|>\n" + r["messages"][1]["content"])) -
                           len(sp.encode("<|assistant|>\n")) + 1 for r in train_rows)
    check(abs(evals[0]["eval_num_tokens"] - want_eval_tokens) <= len(train_rows),
          f"eval_num_tokens {evals[0]['eval_num_tokens']}, about {want_eval_tokens} expected")
    print(f"  ok   loss {first:.3f} -> {last:.3f}; eval loss {evals[0]['eval_loss']:.3f} -> {evals[-1]['eval_loss']:.3f}")

    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    tensors = read_model_dir(out, keep_dtype=True)
    check(dict((n, list(t.shape)) for n, t in tensors.items()) == dict(param_shapes(config)), "output tensor names/shapes")
    check(all(t.dtype == torch.float32 for t in tensors.values()), "f32 model in -> f32 out")
    g = tulu("generate", "-m", out, "--chat", "-p", "Say the word number 2.", "-n", "4", "--output-json")
    check(g.returncode == 0, f"tulu generate on the output failed: {g.stderr}")

    bf16_out = os.path.join(TMP, "bf16_out")
    sft(bf16_model, data, bf16_out, "--batch-size", "4", "--epochs", "2", "--no-progress")
    tensors = read_model_dir(bf16_out, keep_dtype=True)
    check(all(t.dtype == torch.bfloat16 for t in tensors.values()),
          f"bf16 model in -> {sorted({str(t.dtype) for t in tensors.values()})} out")
    original = read_model_dir(bf16_model, keep_dtype=True)
    changed = sum(not torch.equal(original[n], tensors[n]) for n in tensors)
    check(changed > 0, "bf16 output equals the input: no update survived rounding")
    g = tulu("generate", "-m", bf16_out, "-p", "Hello", "-n", "3")
    check(g.returncode == 0, f"tulu generate on the bf16 output failed: {g.stderr}")
    print(f"  ok   outputs: f32 and bf16 kept, {changed} bf16 tensors changed, both load in tulu generate")


def test_grad_accumulation(model, sp):
    print("--dump-grads: a 2-micro-batch gradient is the mean of the micro-batches' gradients")
    rows = [{"text": "one two three"}, {"text": "a much longer row of text with many more tokens in it"}]
    data = os.path.join(TMP, "accum.jsonl")
    write_jsonl(data, rows)
    both = os.path.join(TMP, "accum.safetensors")
    p = tulu("sft", "-m", model, "--data", data, "--batch-size", "1", "--grad-accum", "2", "--dump-grads", both)
    assert p.returncode == 0, p.stderr
    with open(os.path.join(TMP, "accum.batch.json")) as f:
        batch = json.load(f)
    check(len(batch) == 2, f"batch.json rows {len(batch)}")
    expected = {tuple([1] + sp.encode(r["text"]) + [2]) for r in rows}
    check({tuple(b["input_ids"]) for b in batch} == expected, "batch.json input_ids != BOS + SentencePiece + EOS")
    check(all(b["labels"] == b["input_ids"] for b in batch), "text rows: labels = input_ids")
    check(sorted(b["micro_batch"] for b in batch) == [0, 1], f"micro_batch indices {[b['micro_batch'] for b in batch]}")
    grads = read_safetensors(both)
    singles = []
    for i, b in enumerate(batch):
        text = next(r["text"] for r in rows if [1] + sp.encode(r["text"]) + [2] == b["input_ids"])
        single_data = os.path.join(TMP, f"accum_{i}.jsonl")
        write_jsonl(single_data, [{"text": text}])
        path = os.path.join(TMP, f"accum_{i}.safetensors")
        p = tulu("sft", "-m", model, "--data", single_data, "--batch-size", "1", "--dump-grads", path)
        assert p.returncode == 0, p.stderr
        singles.append(read_safetensors(path))
    with open(os.path.join(model, "config.json")) as f:
        config = json.load(f)
    check(sorted(grads) == sorted(n for n, _ in param_shapes(config)), "gradient names != parameter names")
    worst = 0.0
    for name, g in grads.items():
        check(g.dtype == torch.float32, f"{name}: dtype {g.dtype}")
        want = (singles[0][name].double() + singles[1][name].double()) / 2
        scale = want.abs().max().item() + 1e-12
        worst = max(worst, (g.double() - want).abs().max().item() / scale)
    check(worst < 1e-5, f"accumulated gradient vs mean of singles: max relative difference {worst}")
    print(f"  ok   max |g - mean(g1, g2)| / max|g| = {worst:.2e}")


def test_checkpoint_activations(model):
    print("--checkpoint-activations recomputes the same numbers")
    data = os.path.join(TMP, "ckpt_act.jsonl")
    write_jsonl(data, text_rows(6))
    outputs = []
    for extra in ([], ["--checkpoint-activations"]):
        out = os.path.join(TMP, f"ckpt_act_out{len(extra)}")
        sft(model, data, out, "--batch-size", "3", "--grad-accum", "1", "--lr", "1e-2", "--no-progress", *extra)
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            outputs.append((f.read(), read_metrics(out)[0]))
    check(outputs[0] == outputs[1], "--checkpoint-activations changed the trained model or the metrics")
    print("  ok   identical model bytes and metrics")


def main():
    os.makedirs(TMP, exist_ok=True)
    model = os.path.join(TMP, "model")
    bf16_model = os.path.join(TMP, "model_bf16")
    init_model(model)
    init_model(bf16_model, "bf16")
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model, "tokenizer.model"))
    test_step_arithmetic(model, sp)
    test_schedules(model)
    test_memorize_and_outputs(model, bf16_model, sp)
    test_grad_accumulation(model, sp)
    test_checkpoint_activations(model)
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
