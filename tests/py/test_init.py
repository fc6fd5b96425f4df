"""`tulu init` writes a model directory in exactly the Hugging Face layout, checked with the
PyTorch-side reader (tests/reference/hf_checkpoint.py), independently of tulu's loader:

- tensor names, shapes and dtypes = transformers' LlamaForCausalLM registry for the
  config.json written (hf_checkpoint.param_shapes), nothing else stored;
- config.json has the fields transformers' LlamaConfig reads, with the requested values;
- sharded output: HF index layout {"metadata": {"total_size"}, "weight_map"}, every shard
  named exists and holds exactly the tensors mapped to it; safetensors metadata format "pt"
  (transformers refuses other files);
- values: linear/embedding weights ~ normal(0, 0.02) (mean/std within 5 standard errors),
  RMSNorm weights exactly 1; same seed → identical files, other seed → different;
- tokenizer files identical to data/llama2-tokenizer; README says UNTRAINED;
- refusals: non-empty directory without --force, impossible shapes, vocab below the
  tokenizer's; --force replaces stale shards.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys

import torch

from hf_checkpoint import param_shapes, read_model_dir, read_safetensors, weight_files, TOKENIZER_DIR

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "init")
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
TORCH_DTYPE_NAMES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def init(out, *args):
    p = tulu("init", "-o", out, *args)
    assert p.returncode == 0, f"tulu init {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p.stdout


def check_dir(d, dtype, expect):
    """Checks one written directory against the config it should have."""
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    for key, value in expect.items():
        assert config[key] == value, f"{d}: config.json {key} = {config[key]!r}, expected {value!r}"
    for key in ("architectures", "model_type", "hidden_act", "rms_norm_eps", "rope_theta", "max_position_embeddings",
                "bos_token_id", "eos_token_id", "torch_dtype", "tie_word_embeddings", "vocab_size"):
        assert key in config, f"{d}: config.json lacks {key}"
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert config["torch_dtype"] == TORCH_DTYPE_NAMES[dtype]
    assert config["bos_token_id"] == 1 and config["eos_token_id"] == 2

    tensors = read_model_dir(d, keep_dtype=True)
    want = dict(param_shapes(config))
    assert set(tensors) == set(want), f"{d}: names differ: {set(tensors) ^ set(want)}"
    for name, shape in want.items():
        t = tensors[name]
        assert list(t.shape) == shape, f"{d}: {name} shape {list(t.shape)} != {shape}"
        assert t.dtype == DTYPES[dtype], f"{d}: {name} dtype {t.dtype}"

    # Every safetensors file carries {"format": "pt"} metadata.
    for file_name in weight_files(d):
        with open(os.path.join(d, file_name), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        assert header.get("__metadata__", {}).get("format") == "pt", f"{file_name}: metadata {header.get('__metadata__')}"
        assert (8 + n) % 8 == 0, f"{file_name}: data not 8-aligned"

    # Values: normal(0, 0.02) for matrices, ones for norms.
    values = torch.cat([t.float().flatten() for n, t in tensors.items() if t.dim() == 2])
    n = values.numel()
    mean, std = values.mean().item(), values.std().item()
    assert abs(mean) < 5 * 0.02 / math.sqrt(n), f"{d}: mean {mean}"
    tol = 5 * 0.02 / math.sqrt(2 * n) + (0.02 * 2 ** -8 if dtype != "f32" else 0)  # + rounding of 16-bit types
    assert abs(std - 0.02) < tol, f"{d}: std {std} (tolerance {tol})"
    for name, t in tensors.items():
        if t.dim() == 1:
            assert torch.all(t.float() == 1.0), f"{d}: {name} is not all ones"

    for name in ("tokenizer.model", "tokenizer_config.json"):
        with open(os.path.join(d, name), "rb") as a, open(os.path.join(TOKENIZER_DIR, name), "rb") as b:
            assert a.read() == b.read(), f"{d}: {name} differs from data/llama2-tokenizer"
    with open(os.path.join(d, "special_tokens_map.json")) as f:
        special = json.load(f)
    assert special["bos_token"]["content"] == "<s>" and special["eos_token"]["content"] == "</s>"
    with open(os.path.join(d, "README.md")) as f:
        assert "UNTRAINED" in f.read(), f"{d}: README.md does not say UNTRAINED"
    with open(os.path.join(d, "generation_config.json")) as f:
        gen = json.load(f)
    assert gen["eos_token_id"] == 2 and gen["bos_token_id"] == 1
    return config, tensors


def check_index(d, shards):
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        index = json.load(f)
    assert set(index) == {"metadata", "weight_map"}, f"index keys {set(index)}"
    files = sorted(set(index["weight_map"].values()))
    assert files == [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)], files
    total = 0
    for file_name in files:
        part = read_safetensors(os.path.join(d, file_name))
        mapped = {k for k, v in index["weight_map"].items() if v == file_name}
        assert set(part) == mapped, f"{file_name}: holds {set(part) ^ mapped} contrary to the index"
        total += sum(t.numel() * t.element_size() for t in part.values())
    assert index["metadata"]["total_size"] == total, f"total_size {index['metadata']['total_size']} != {total}"
    assert not os.path.exists(os.path.join(d, "model.safetensors"))


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)

    d = os.path.join(TMP, "tiny")
    out = init(d)
    assert "UNTRAINED" in out and "model.safetensors" in out, out
    config, tensors = check_dir(d, "f32", {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
                                           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
                                           "max_position_embeddings": 2048, "tie_word_embeddings": False})
    params = sum(t.numel() for t in tensors.values())
    info = json.loads(tulu("info", "-m", d, "--json").stdout)
    assert info["parameters"] == params, f"tulu info says {info['parameters']}, files hold {params}"
    # The embedded tokenizer_config.json carries the Tulu 2 chat_template (TULU2.md).
    assert info["chat_format"] == "tulu" and info["chat_format_source"] == "chat_template", info["chat_format"]
    print(f"tiny: {len(tensors)} tensors, {params} parameters, layout and values as transformers expects")

    d2 = os.path.join(TMP, "sharded")
    init(d2, "--hidden-size", "96", "--intermediate-size", "200", "--layers", "3", "--heads", "6", "--kv-heads", "3",
         "--head-dim", "32", "--vocab-size", "32001", "--rms-norm-eps", "1e-5", "--rope-theta", "500000",
         "--max-position-embeddings", "4096", "--tie-embeddings", "--dtype", "bf16", "--shards", "3", "--seed", "11")
    check_dir(d2, "bf16", {"hidden_size": 96, "intermediate_size": 200, "num_hidden_layers": 3,
                           "num_attention_heads": 6, "num_key_value_heads": 3, "head_dim": 32, "vocab_size": 32001,
                           "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 4096,
                           "tie_word_embeddings": True})
    check_index(d2, 3)
    print("sharded bf16 tied GQA head_dim=32: index layout, shard contents, config fields as requested")

    d3 = os.path.join(TMP, "f16")
    init(d3, "--dtype", "f16", "--heads", "8")  # --heads alone: MHA
    check_dir(d3, "f16", {"num_attention_heads": 8, "num_key_value_heads": 8})

    # Determinism.
    same = os.path.join(TMP, "same")
    init(same)
    with open(os.path.join(d, "model.safetensors"), "rb") as a, open(os.path.join(same, "model.safetensors"), "rb") as b:
        assert a.read() == b.read(), "same seed gave different weights"
    other = os.path.join(TMP, "other")
    init(other, "--seed", "1")
    with open(os.path.join(d, "model.safetensors"), "rb") as a, open(os.path.join(other, "model.safetensors"), "rb") as b:
        assert a.read() != b.read(), "different seeds gave identical weights"
    print("same seed → identical bytes; another seed → different")

    # Refusals.
    p = tulu("init", "-o", d)
    assert p.returncode == 1 and "not empty" in p.stderr and "--force" in p.stderr, (p.returncode, p.stderr)
    for args, fragment in [(["--vocab-size", "100"], "vocab-size"),
                           (["--hidden-size", "100", "--heads", "3"], "hidden_size"),
                           (["--heads", "4", "--kv-heads", "3"], "num_key_value_heads"),
                           (["--shards", "1000"], "--shards")]:
        p = tulu("init", "-o", os.path.join(TMP, "bad"), *args)
        assert p.returncode == 1 and fragment in p.stderr, (args, p.returncode, p.stderr)
    p = tulu("init", "-o", os.path.join(TMP, "bad"), "--dtype", "f64")
    # A command-line parse error: non-zero, not a crash (main.cc decides the exact code).
    assert 0 < p.returncode < 128 and "dtype" in p.stderr, (p.returncode, p.stderr)
    p = tulu("init", "-o", os.path.join(TMP, "bad"), "--preset", "huge")
    assert 0 < p.returncode < 128 and "preset" in p.stderr, (p.returncode, p.stderr)
    print("refusals: non-empty directory, bad shapes, vocab below 32000, too many shards, unknown dtype/preset")

    # --force over a sharded model leaves a single consistent file, no stale index.
    init(d2, "--force")
    assert not os.path.exists(os.path.join(d2, "model.safetensors.index.json")), "stale index left behind"
    assert not any(n.startswith("model-") for n in os.listdir(d2)), "stale shards left behind"
    check_dir(d2, "f32", {"hidden_size": 64})
    print("--force replaced a sharded model cleanly")
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
