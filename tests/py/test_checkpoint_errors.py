"""Bad model directories: `tulu info` must exit 1 with a message naming the file and, where
there is one, the tensor or field — never crash (this test also runs against the
ASan+UBSan build: a sanitizer report or a signal fails it).

Each case starts from a valid tiny model written by tests/reference/hf_checkpoint.py and
breaks one thing. A pickle that would run os.system is also checked not to have run.
"""

import collections
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

import torch

from hf_checkpoint import make_config, make_state_dict, write_model_dir, write_safetensors

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "checkpoint_errors")
SANITIZER_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "LeakSanitizer")

failures = []


def expect_failure(case, d, *fragments):
    p = subprocess.run([TULU, "info", "-m", d], capture_output=True, text=True)
    problems = []
    if p.returncode != 1:
        problems.append(f"exit code {p.returncode}, expected 1")
    if not p.stderr.startswith("tulu info: error: "):
        problems.append("stderr does not start with 'tulu info: error: '")
    for mark in SANITIZER_MARKS:
        if mark in p.stderr:
            problems.append(f"sanitizer report ({mark})")
    for fragment in fragments:
        if fragment not in p.stderr:
            problems.append(f"message lacks {fragment!r}")
    if problems:
        failures.append(f"{case}: {'; '.join(problems)}\n  stderr: {p.stderr.strip()[:2000]}")
        print(f"FAIL {case}")
    else:
        print(f"ok   {case}: {p.stderr.strip().splitlines()[0][len('tulu info: error: '):][:200]}")


def fresh(case, fmt="safetensors", shards=1, state_edit=None, **config_args):
    d = os.path.join(TMP, case)
    shutil.rmtree(d, ignore_errors=True)
    config = make_config(hidden=32, intermediate=64, layers=2, heads=4, kv_heads=2, vocab=32000, **config_args)
    state = make_state_dict(config, seed=3)
    if state_edit:
        state_edit(state)
    write_model_dir(d, config, state, fmt=fmt, shards=shards)
    return d


def edit_json(path, edit):
    with open(path) as f:
        obj = json.load(f)
    edit(obj)
    with open(path, "w") as f:
        json.dump(obj, f)


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)

    # --- directory and config.json ----------------------------------------------------
    expect_failure("missing directory", os.path.join(TMP, "nope"), "nope", "does not exist")
    d = fresh("no_config")
    os.remove(os.path.join(d, "config.json"))
    expect_failure("missing config.json", d, "config.json is missing")
    d = fresh("config_not_json")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"hidden_size": 32,')
    expect_failure("config.json not JSON", d, "config.json", "invalid JSON")
    d = fresh("config_bad_type")
    edit_json(os.path.join(d, "config.json"), lambda c: c.update(hidden_size="32"))
    expect_failure("hidden_size a string", d, "config.json", "hidden_size")
    d = fresh("rope_dynamic")
    edit_json(os.path.join(d, "config.json"), lambda c: c.update(rope_scaling={"type": "dynamic", "factor": 2.0}))
    expect_failure("rope_scaling dynamic", d, "config.json", "rope_scaling", "dynamic")
    d = fresh("gen_config_bad")
    edit_json(os.path.join(d, "generation_config.json"), lambda c: c.update(top_p=3))
    expect_failure("generation_config top_p", d, "generation_config.json", "top_p")
    d = fresh("no_weights")
    os.remove(os.path.join(d, "model.safetensors"))
    expect_failure("no weight files", d, "no weights found")

    # --- tensors vs config ------------------------------------------------------------
    def transpose_up(s):
        s["model.layers.1.mlp.up_proj.weight"] = s["model.layers.1.mlp.up_proj.weight"].t().contiguous()
    d = fresh("wrong_shape", state_edit=transpose_up)
    expect_failure("wrong shape", d, "model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight': "
                                     "expected shape [64, 32], file has [32, 64]")
    d = fresh("wrong_rank", state_edit=lambda s: s.update({"model.norm.weight": s["model.norm.weight"].reshape(1, 32)}))
    expect_failure("wrong rank", d, "tensor 'model.norm.weight'", "expected shape [32], file has [1, 32]")
    d = fresh("missing_tensor", state_edit=lambda s: s.pop("model.layers.0.self_attn.v_proj.weight"))
    expect_failure("missing tensor", d, "missing", "model.layers.0.self_attn.v_proj.weight")
    d = fresh("unexpected_tensor", state_edit=lambda s: s.update({"model.layers.0.self_attn.q_proj.bias": torch.zeros(32)}))
    expect_failure("unexpected tensor", d, "unexpected", "model.layers.0.self_attn.q_proj.bias", "model.safetensors")
    d = fresh("untied_no_lm_head", state_edit=lambda s: s.pop("lm_head.weight"))
    expect_failure("untied model without lm_head", d, "missing", "lm_head.weight")
    d = fresh("bin_wrong_shape", fmt="bin", state_edit=transpose_up)
    expect_failure("wrong shape (.bin)", d, "pytorch_model.bin: tensor 'model.layers.1.mlp.up_proj.weight'",
                   "expected shape [64, 32], file has [32, 64]")

    # --- safetensors files ------------------------------------------------------------
    d = fresh("truncated")
    path = os.path.join(d, "model.safetensors")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    expect_failure("truncated safetensors", d, "model.safetensors", "past the end")
    d = fresh("header_too_long")
    path = os.path.join(d, "model.safetensors")
    data = open(path, "rb").read()
    open(path, "wb").write(struct.pack("<Q", len(data) * 4) + data[8:])
    expect_failure("header length beyond the file", d, "model.safetensors", "exceeds the file size")
    d = fresh("bad_dtype")
    path = os.path.join(d, "model.safetensors")
    header = json.dumps({"model.norm.weight": {"dtype": "I64", "shape": [4], "data_offsets": [0, 32]}}).encode()
    open(path, "wb").write(struct.pack("<Q", len(header)) + header + bytes(32))
    expect_failure("I64 tensor", d, "model.safetensors", "tensor 'model.norm.weight'", "I64")
    d = fresh("overlap")
    path = os.path.join(d, "model.safetensors")
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                         "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}).encode()
    open(path, "wb").write(struct.pack("<Q", len(header)) + header + bytes(24))
    expect_failure("overlapping tensors", d, "model.safetensors", "overlap")

    # --- sharded ----------------------------------------------------------------------
    d = fresh("missing_shard", shards=2)
    os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
    expect_failure("index names a missing shard", d, "model.safetensors.index.json", "model-00002-of-00002.safetensors",
                   "missing")
    d = fresh("duplicate_across_shards", shards=2)
    first = os.path.join(d, "model-00001-of-00002.safetensors")
    write_safetensors(first, {"model.norm.weight": torch.ones(32),
                              "model.embed_tokens.weight": torch.zeros(32000, 32)}, {"format": "pt"})
    expect_failure("tensor in two shards", d, "model.norm.weight", "twice")
    d = fresh("bin_missing_shard", fmt="bin", shards=2)
    os.remove(os.path.join(d, "pytorch_model-00001-of-00002.bin"))
    expect_failure("bin index names a missing shard", d, "pytorch_model.bin.index.json",
                   "pytorch_model-00001-of-00002.bin")

    # --- PyTorch .bin -----------------------------------------------------------------
    marker = os.path.join(TMP, "PWNED")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    d = fresh("bin_os_system", fmt="bin")
    path = os.path.join(d, "pytorch_model.bin")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pytorch_model/data.pkl", pickle.dumps({"model.norm.weight": Evil()}, protocol=2))
        z.writestr("pytorch_model/version", "3\n")
    expect_failure("pickle calling os.system", d, "pytorch_model.bin", "posix.system", "not allowed")
    if os.path.exists(marker):
        failures.append("pickle calling os.system: the command RAN")
    d = fresh("bin_truncated", fmt="bin")
    path = os.path.join(d, "pytorch_model.bin")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 100])
    expect_failure("truncated .bin", d, "pytorch_model.bin")
    d = fresh("bin_compressed", fmt="bin")
    path = os.path.join(d, "pytorch_model.bin")
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, b in entries.items():
            z.writestr(n, b)
    expect_failure("compressed .bin", d, "pytorch_model.bin", "compressed")
    d = fresh("bin_legacy", fmt="bin")
    torch.save(make_state_dict(make_config(hidden=32, intermediate=64, layers=2, heads=4, kv_heads=2)),
               os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=False)
    expect_failure("pre-1.6 torch.save format", d, "pytorch_model.bin", "not a zip archive")
    d = fresh("bin_float64", fmt="bin",
              state_edit=lambda s: s.update({"model.norm.weight": s["model.norm.weight"].double()}))
    expect_failure("float64 tensor", d, "pytorch_model.bin", "DoubleStorage")

    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print("every bad directory gave exit code 1 with a message naming the file/tensor/field, no crash")
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
