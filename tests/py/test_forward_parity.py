"""Forward-pass parity: `tulu logits` against tests/reference/hf_llama.py (PyTorch,
Hugging Face LlamaForCausalLM semantics) on random checkpoints written by
tests/reference/hf_checkpoint.py.

For every case (shapes, dtypes, file formats, eps, rope settings below):
  prompt       64-token prompt as one batch, logits of all 64 positions, and every traced
               intermediate (embedding, each layer's residual stream after attention and
               after the MLP, final norm) via --dump-activations, to name the first layer
               that diverges when something breaks
  decode       the same prompt as one batch, then 32 tokens one at a time through the KV
               cache (`--incremental --prefill 64`), against the reference's own KV-cache path
  stepwise     32 tokens fed one at a time from position 0 (`--incremental`)
Each must match within max |Δlogit| ≤ 1e-4 (the issue's bound). Every comparison is printed.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import hf_checkpoint
from hf_llama import LlamaReference

TOLERANCE = 1e-4
PROMPT, DECODE, STEPWISE = 64, 32, 32

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "forward_parity")

# name: (make_config kwargs, weight dtype, file format, shards, extra `tulu logits` args, env);
# names ending in _small_embed get tiny embeddings so that rms_norm_eps matters (see main).
CASES = [
    ("mha_f32_vocab32000_eps1e-6_small_embed", dict(hidden=64, intermediate=172, layers=2, heads=4, vocab=32000,
                                                    eps=1e-6),
     "float32", "safetensors", 1, [], {}),
    ("gqa_bf16_sharded3_eps1e-5_small_embed", dict(hidden=128, intermediate=344, layers=3, heads=8, kv_heads=2,
                                                   vocab=2000, eps=1e-5), "bfloat16", "safetensors", 3, [], {}),
    ("gqa_f16_tied", dict(hidden=64, intermediate=160, layers=2, heads=4, kv_heads=2, vocab=1000, tie=True),
     "float16", "safetensors", 1, [], {}),
    ("mha_bf16_tied_vocab32000", dict(hidden=64, intermediate=128, layers=1, heads=2, vocab=32000, tie=True,
                                      eps=1e-5), "bfloat16", "safetensors", 1, [], {}),
    ("pytorch_bin_f32", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=1500, eps=1e-5),
     "float32", "bin", 1, [], {}),
    ("pytorch_bin_bf16_sharded2", dict(hidden=96, intermediate=256, layers=2, heads=6, kv_heads=3, vocab=1500),
     "bfloat16", "bin", 2, [], {}),
    ("head_dim32_explicit_theta5e5", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=1000,
                                          head_dim=32, rope_theta=500000.0), "float32", "safetensors", 1, [], {}),
    ("rope_linear_x4_theta1e6", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=1, vocab=1000,
                                     rope_theta=1e6, rope_scaling={"type": "linear", "factor": 4.0}),
     "float32", "safetensors", 1, [], {}),
    ("chunked_max_batch_24_f16", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=1000),
     "float16", "safetensors", 2, ["--max-batch", "24"], {}),
    ("medium_gqa_bf16_vocab32000", dict(hidden=256, intermediate=688, layers=4, heads=8, kv_heads=4, vocab=32000,
                                        eps=1e-5), "bfloat16", "safetensors", 2, [], {}),
    ("generic_kernels_bf16", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=1000),
     "bfloat16", "safetensors", 1, [], {"TULU_FORCE_GENERIC": "1"}),
]


def run_logits(model_dir, ids, out, extra, env_extra):
    cmd = [TULU, "logits", "-m", model_dir, "--ids", ",".join(map(str, ids)), "-o", out, "-t", "2"] + extra
    env = dict(os.environ, **env_extra)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])} ... failed ({result.returncode}): {result.stderr.strip()}")
    logits = np.load(out)
    assert logits.dtype == np.float32 and logits.flags["C_CONTIGUOUS"], (logits.dtype, logits.flags)
    return logits


def compare(case, what, got, expected, failures):
    expected = expected.numpy()
    if got.shape != expected.shape:
        failures.append(f"{case} {what}: shape {got.shape} != reference {expected.shape}")
        print(f"  {what:<9} shape mismatch {got.shape} vs {expected.shape}  FAIL")
        return
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    ok = diff <= TOLERANCE and np.isfinite(got).all()
    print(f"  {what:<9} [{got.shape[0]:>3}, {got.shape[1]:>5}]  max |Δlogit| = {diff:.3e}  (max |logit| {scale:.1f})"
          f"  {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(f"{case} {what}: max |Δlogit| {diff:.3e} > {TOLERANCE}")


def compare_activations(case, dump_dir, expected, failures):
    """Per-layer intermediates (tulu logits --dump-activations vs the reference's trace): the
    worst one is printed, and on failure the first that diverges, to locate a bug."""
    worst_name, worst = None, -1.0
    for key, tensor in expected.items():  # in forward order
        path = os.path.join(dump_dir, key + ".npy")
        if not os.path.exists(path):
            failures.append(f"{case}: activation {key} was not dumped")
            print(f"  activations: {key} missing  FAIL")
            return
        got = np.load(path)
        want = tensor.numpy()
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.shape == want.shape else float("inf")
        if not diff <= TOLERANCE:
            failures.append(f"{case}: first diverging activation {key}: max |Δ| {diff:.3e} (shape {got.shape} vs "
                            f"{want.shape})")
            print(f"  activations: first divergence at {key}: max |Δ| = {diff:.3e}  FAIL")
            return
        if diff > worst:
            worst_name, worst = key, diff
    print(f"  activations: {len(expected)} traced, worst max |Δ| = {worst:.3e} at {worst_name}  ok")


def main():
    os.makedirs(TMP, exist_ok=True)
    failures = []
    worst = 0.0
    for index, (name, kwargs, dtype, fmt, shards, extra, env_extra) in enumerate(CASES):
        config = hf_checkpoint.make_config(dtype=dtype, **kwargs)
        state = hf_checkpoint.make_state_dict(config, seed=100 + index)
        if name.endswith("_small_embed"):
            # Embeddings of RMS ≈ 3e-3 make mean(x²) ≈ 1e-5 at the first norm, the size of eps,
            # so that a wrong or ignored rms_norm_eps changes the logits far beyond the tolerance.
            embed = state["model.embed_tokens.weight"]
            state["model.embed_tokens.weight"] = (embed.float() * 3e-3).to(embed.dtype)
        model_dir = os.path.join(TMP, name)
        hf_checkpoint.write_model_dir(model_dir, config, state, fmt=fmt, shards=shards, tokenizer=False)
        reference = LlamaReference.from_dir(model_dir)

        gen = torch.Generator().manual_seed(200 + index)
        vocab = config["vocab_size"]
        ids = [1] + torch.randint(0, vocab, (PROMPT + DECODE - 1,), generator=gen).tolist()
        prompt = ids[:PROMPT]
        print(f"{name}: {fmt} x{shards} {dtype}, hidden {config['hidden_size']}, layers "
              f"{config['num_hidden_layers']}, heads {config['num_attention_heads']}/"
              f"{config['num_key_value_heads']}, head_dim {hf_checkpoint.head_dim_of(config)}, vocab {vocab}, "
              f"eps {config['rms_norm_eps']}, theta {config['rope_theta']}, rope_scaling {config['rope_scaling']}, "
              f"tied {config['tie_word_embeddings']} {' '.join(extra)} {env_extra or ''}")
        try:
            # 1. the 64-token prompt as one batch, with every traced intermediate activation
            activations = {}
            expected_prompt, cache = reference.forward(
                prompt, trace=lambda key, tensor: activations.__setitem__(key, tensor.clone()))
            dump_dir = os.path.join(model_dir, "activations")
            got = run_logits(model_dir, prompt, os.path.join(model_dir, "prompt.npy"),
                             extra + ["--dump-activations", dump_dir], env_extra)
            compare(name, "prompt", got, expected_prompt, failures)
            compare_activations(name, dump_dir, activations, failures)

            # 2. prompt batch, then 32 decode steps through the cache (reference: its KV cache)
            rows = [expected_prompt]
            for token in ids[PROMPT:]:
                step, cache = reference.forward([token], cache)
                rows.append(step)
            expected_decode = torch.cat(rows)
            got = run_logits(model_dir, ids, os.path.join(model_dir, "decode.npy"),
                             extra + ["--incremental", "--prefill", str(PROMPT)], env_extra)
            compare(name, "decode", got[PROMPT:], expected_decode[PROMPT:], failures)

            # 3. 32 tokens one at a time from position 0 (reference: one at a time too)
            cache, rows = reference.new_cache(), []
            for token in ids[:STEPWISE]:
                step, cache = reference.forward([token], cache)
                rows.append(step)
            got = run_logits(model_dir, ids[:STEPWISE], os.path.join(model_dir, "stepwise.npy"),
                             extra + ["--incremental"], env_extra)
            compare(name, "stepwise", got, torch.cat(rows), failures)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
            print(f"  FAIL: {e}")

    if failures:
        print(f"\n{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print(f"\nall {len(CASES)} cases within max |Δlogit| ≤ {TOLERANCE}")


if __name__ == "__main__":
    main()
