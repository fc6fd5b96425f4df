"""`--bf16-activations` against PyTorch: with BF16 weights, prompt batches (more than 24 rows)
round the inputs of every linear layer to bf16, and nothing else changes.

On a random BF16 checkpoint, a 64-token prompt through `tulu logits`:
  flag off   equals tests/reference/hf_llama.py (fp32 compute on the BF16 weights) within
             1e-4, the exact path's bound;
  flag on    follows the same reference with each linear input rounded to bf16
             (torch: x.to(bfloat16).float()), not the exact one. Both sides round the same
             activations, but those differ in their last fp32 bits (summation order), and
             where one sits near a bf16 rounding boundary the two round it apart by 2⁻⁸
             relative; such a flip moves a whole output row of the next layer, and on a
             random model the flips compound from layer to layer. So the check is made where
             it is sharp, on the first layer's attention output (--dump-activations): most
             elements equal the rounded reference within 1e-5 and almost none the exact one.
             The logits stay within LOGIT_BOUND of the exact reference;
  stepwise   32 tokens one at a time from position 0 with the flag on (decode steps: one
             row) equal the exact reference within 1e-4: decode keeps fp32 activations.
  default    follows the format: the Hugging Face directory computes as transformers does
             (fp32: its default equals --f32-activations), the same weights as a BF16 GGUF
             file (tests/reference/gguf_reference.py) as llama.cpp does (its default equals
             --bf16-activations, within LOGIT_BOUND of the exact reference and not within
             1e-4 of it), and the GGUF file with --f32-activations equals the exact
             reference within 1e-4.
Needs a CPU with AVX-512 BF16 (elsewhere the flag changes nothing, which is checked instead).
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import gguf_reference as gr
import hf_checkpoint
from hf_llama import LlamaReference

EXACT_TOLERANCE = 1e-4
FIRST_LAYER = "layers.0.attention_residual"
ELEMENT_TOLERANCE = 1e-5
# Measured on this case: 82 % of the first layer's elements within 1e-5 of the rounded
# reference, 0.9 % of the exact one; max |Δlogit| to the exact reference 1.8e-2.
MIN_SHARE_ROUNDED, MAX_SHARE_EXACT, LOGIT_BOUND = 0.5, 0.1, 0.1
PROMPT, STEPWISE = 64, 32
TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "bf16_activations")


class RoundedInputsReference(LlamaReference):
    """The reference with every linear input of a batch of more than 24 rows rounded to bf16."""

    @staticmethod
    def linear(x, weight):
        if x.shape[0] > 24:
            x = x.to(torch.bfloat16).float()
        return torch.nn.functional.linear(x, weight)


def cpu_has_avx512_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            return any("avx512_bf16" in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return False


def run_logits(model_dir, ids, out, extra):
    cmd = [TULU, "logits", "-m", model_dir, "--ids", ",".join(map(str, ids)), "-o", out, "-t", "2"] + extra
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return np.load(out)


def max_diff(got, expected):
    return float(np.max(np.abs(got.astype(np.float64) - expected.numpy().astype(np.float64))))


def share_within(got, expected):
    return float(np.mean(np.abs(got.astype(np.float64) - expected.numpy().astype(np.float64)) <= ELEMENT_TOLERANCE))


def main():
    os.makedirs(TMP, exist_ok=True)
    config = hf_checkpoint.make_config(dtype="bfloat16", hidden=256, intermediate=688, layers=4, heads=8,
                                       kv_heads=4, vocab=2000, eps=1e-5)
    state = hf_checkpoint.make_state_dict(config, seed=31)
    model_dir = os.path.join(TMP, "gqa_bf16")
    hf_checkpoint.write_model_dir(model_dir, config, state, fmt="safetensors", shards=1, tokenizer=False)
    exact = LlamaReference.from_dir(model_dir)
    rounded = RoundedInputsReference.from_dir(model_dir)
    gen = torch.Generator().manual_seed(32)
    ids = [1] + torch.randint(0, config["vocab_size"], (PROMPT - 1,), generator=gen).tolist()

    exact_trace, rounded_trace = {}, {}
    expected_exact, _ = exact.forward(ids, trace=lambda key, t: exact_trace.__setitem__(key, t.clone()))
    rounded.forward(ids, trace=lambda key, t: rounded_trace.__setitem__(key, t.clone()))
    off = run_logits(model_dir, ids, os.path.join(model_dir, "off.npy"), [])
    dump = os.path.join(model_dir, "activations_on")
    on = run_logits(model_dir, ids, os.path.join(model_dir, "on.npy"), ["--bf16-activations", "--dump-activations", dump])
    first_layer = np.load(os.path.join(dump, FIRST_LAYER + ".npy"))
    failures = []

    def check(what, ok, detail):
        print(f"  {what:<44} {detail}  {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{what}: {detail}")

    d = max_diff(off, expected_exact)
    check("flag off vs exact reference", d <= EXACT_TOLERANCE, f"max |Δlogit| {d:.3e} (≤ {EXACT_TOLERANCE})")
    share_rounded = share_within(first_layer, rounded_trace[FIRST_LAYER])
    share_exact = share_within(first_layer, exact_trace[FIRST_LAYER])
    if cpu_has_avx512_bf16():
        check(f"flag on, {FIRST_LAYER} vs rounded-input reference", share_rounded >= MIN_SHARE_ROUNDED,
              f"{share_rounded:.1%} of elements within {ELEMENT_TOLERANCE} (≥ {MIN_SHARE_ROUNDED:.0%})")
        check(f"flag on, {FIRST_LAYER} vs exact reference", share_exact <= MAX_SHARE_EXACT,
              f"{share_exact:.1%} of elements within {ELEMENT_TOLERANCE} (≤ {MAX_SHARE_EXACT:.0%})")
        d = max_diff(on, expected_exact)
        check("flag on, logits vs exact reference", d <= LOGIT_BOUND, f"max |Δlogit| {d:.3e} (≤ {LOGIT_BOUND})")
    else:
        print("  no AVX-512 BF16 on this CPU: the flag must change nothing")
        check("flag on without AVX-512 BF16", np.array_equal(on, off), "logits identical to flag off")

    cache, rows = exact.new_cache(), []
    for token in ids[:STEPWISE]:
        step, cache = exact.forward([token], cache)
        rows.append(step)
    stepwise = run_logits(model_dir, ids[:STEPWISE], os.path.join(model_dir, "stepwise.npy"),
                          ["--bf16-activations", "--incremental"])
    d = max_diff(stepwise, torch.cat(rows))
    check("flag on, decode steps vs exact reference", d <= EXACT_TOLERANCE, f"max |Δlogit| {d:.3e} (≤ {EXACT_TOLERANCE})")

    hf_off = run_logits(model_dir, ids, os.path.join(model_dir, "hf_f32.npy"), ["--f32-activations"])
    check("HF directory: default == --f32-activations", np.array_equal(off, hf_off), "identical logits")
    gguf = os.path.join(TMP, "gqa_bf16.gguf")  # the same weights, by the reference GGUF writer
    gr.write_gguf(gguf, gr.llama_metadata(config), gr.llama_tensors(config, state, gr.GGML_BF16))
    gguf_default = run_logits(gguf, ids, os.path.join(model_dir, "gguf_default.npy"), [])
    gguf_on = run_logits(gguf, ids, os.path.join(model_dir, "gguf_on.npy"), ["--bf16-activations"])
    gguf_off = run_logits(gguf, ids, os.path.join(model_dir, "gguf_off.npy"), ["--f32-activations"])
    check("BF16 GGUF: default == --bf16-activations", np.array_equal(gguf_default, gguf_on), "identical logits")
    d = max_diff(gguf_off, expected_exact)
    check("BF16 GGUF --f32-activations vs exact", d <= EXACT_TOLERANCE, f"max |Δlogit| {d:.3e} (≤ {EXACT_TOLERANCE})")
    d = max_diff(gguf_default, expected_exact)
    if cpu_has_avx512_bf16():
        check("BF16 GGUF default vs exact reference", EXACT_TOLERANCE < d <= LOGIT_BOUND,
              f"max |Δlogit| {d:.3e} (in ({EXACT_TOLERANCE}, {LOGIT_BOUND}]: rounded, within the bound)")
    else:
        check("BF16 GGUF default without AVX-512 BF16", d <= EXACT_TOLERANCE, f"max |Δlogit| {d:.3e}")

    if failures:
        print(f"\n{len(failures)} failure(s)")
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
