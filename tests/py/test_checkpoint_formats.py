"""Every checkpoint layout tulu reads, written by PyTorch-side code (tests/reference/hf_checkpoint.py:
hand-written safetensors, real torch.save .bin), checked through the real `tulu` binary:

- `tulu info --json`: parameter count = sum of numel of the state dict PyTorch wrote (a tied
  lm_head counted once), per-dtype tensor counts, weight format, tensor names/shapes/dtypes;
- `tulu dump-tensor`: every tensor's stored bits equal the torch tensor's bits.

Layouts: single / sharded safetensors and .bin; F32 / F16 / BF16 and a mixed-dtype file;
MHA and GQA; tied and untied (and tied with lm_head stored, sharing the embedding's
storage in .bin); old checkpoints carrying rotary_emb.inv_freq buffers.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

from hf_checkpoint import make_config, make_state_dict, write_model_dir, tensor_bytes

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "checkpoint_formats")
NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def run(*args):
    p = subprocess.run([TULU, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: tulu {' '.join(args)} exited {p.returncode}\n{p.stderr}")
    return p.stdout


def check_case(name, fmt, shards, dtype, tie, kv_heads, mixed=False, inv_freq=False, lm_head_in_file=False):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    config = make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=kv_heads, vocab=32000,
                         tie=tie, dtype=dtype)
    state = make_state_dict(config, seed=len(name))
    if mixed:  # a different dtype per tensor, as some converted checkpoints have
        cycle = [torch.float32, torch.float16, torch.bfloat16]
        for i, k in enumerate(state):
            state[k] = state[k].float().to(cycle[i % 3])
    extra = None
    if inv_freq:
        hd = 64 // 4
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        extra = {f"model.layers.{i}.self_attn.rotary_emb.inv_freq": inv for i in range(2)}
    write_model_dir(d, config, state, fmt=fmt, shards=shards, extra_tensors=extra,
                    tied_lm_head_in_file=lm_head_in_file)

    info = json.loads(run("info", "-m", d, "--json"))
    expected_params = sum(t.numel() for t in state.values())
    assert info["parameters"] == expected_params, f"{name}: parameters {info['parameters']} != torch {expected_params}"
    kind = "safetensors" if fmt == "safetensors" else "pytorch"
    expected_format = f"{kind} (1 file)" if shards == 1 else f"{kind} ({shards} shards)"
    assert info["weight_format"] == expected_format, f"{name}: format {info['weight_format']!r}"
    counts = {}
    for t in state.values():
        counts[NAMES[t.dtype]] = counts.get(NAMES[t.dtype], 0) + 1
    got_counts = {k: v["tensors"] for k, v in info["dtypes"].items()}
    assert got_counts == counts, f"{name}: dtype counts {got_counts} != {counts}"
    listed = {t["name"]: (t["dtype"], t["shape"]) for t in info["tensors"]}
    want = {k: (NAMES[t.dtype], list(t.shape)) for k, t in state.items()}
    assert listed == want, f"{name}: tensor list differs: {set(listed.items()) ^ set(want.items())}"
    expected_ignored = (2 if inv_freq else 0) + (1 if lm_head_in_file else 0)
    assert info["ignored_tensors"] == expected_ignored, f"{name}: ignored {info['ignored_tensors']}"
    assert info["config"]["num_key_value_heads"] == config["num_key_value_heads"]
    assert info["config"]["tie_word_embeddings"] == tie

    # Bit-exact values of every stored tensor (the extras too).
    stored = dict(state)
    stored.update(extra or {})
    if lm_head_in_file:
        stored["lm_head.weight"] = state["model.embed_tokens.weight"]
    npy = os.path.join(d, "dump.npy")
    for k, t in stored.items():
        run("dump-tensor", "-m", d, "--name", k, "-o", npy)
        got = np.load(npy)
        assert list(got.shape) == list(t.shape), f"{name}: {k}: shape {got.shape} != {tuple(t.shape)}"
        assert got.tobytes() == tensor_bytes(t), f"{name}: {k}: stored bits differ from torch's"
        run("dump-tensor", "-m", d, "--name", k, "-o", npy, "--f32")
        f32 = np.load(npy)
        assert f32.dtype == np.float32 and np.array_equal(f32, t.float().numpy()), f"{name}: {k}: --f32 values differ"
    print(f"{name}: {len(stored)} tensors bit-identical to torch, {expected_params} parameters, {expected_format}")
    shutil.rmtree(d, ignore_errors=True)


def main():
    os.makedirs(TMP, exist_ok=True)
    cases = [
        ("st_single_f32_mha", "safetensors", 1, "float32", False, 4),
        ("st_single_bf16_gqa", "safetensors", 1, "bfloat16", False, 2),
        ("st_single_f16_tied", "safetensors", 1, "float16", True, 2),
        ("st_sharded_bf16_gqa", "safetensors", 3, "bfloat16", False, 2),
        ("st_sharded_f32_tied_mqa", "safetensors", 2, "float32", True, 1),
        ("bin_single_f32_mha", "bin", 1, "float32", False, 4),
        ("bin_single_bf16_gqa", "bin", 1, "bfloat16", False, 2),
        ("bin_single_f16_tied", "bin", 1, "float16", True, 4),
        ("bin_sharded_bf16_gqa", "bin", 3, "bfloat16", False, 2),
        ("bin_sharded_f16_untied", "bin", 2, "float16", False, 4),
    ]
    for case in cases:
        check_case(*case)
    check_case("st_mixed_dtypes", "safetensors", 2, "float32", False, 2, mixed=True)
    check_case("bin_mixed_dtypes", "bin", 1, "float32", False, 2, mixed=True)
    check_case("bin_inv_freq_buffers", "bin", 2, "bfloat16", False, 2, inv_freq=True)
    check_case("bin_tied_lm_head_stored", "bin", 1, "float32", True, 2, lm_head_in_file=True)
    check_case("st_tied_lm_head_stored", "safetensors", 1, "bfloat16", True, 2, lm_head_in_file=True)
    print("all checkpoint layouts read bit-exactly")


if __name__ == "__main__":
    main()
