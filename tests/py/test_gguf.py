"""GGUF loading and `tulu quantize`, against tests/reference/gguf_reference.py (a struct-based
GGUF writer/reader written from the spec, with llama.cpp's q/k row permutation) and
tests/reference/hf_llama.py (PyTorch).

  load      random HF checkpoints → GGUF by the reference writer (F32, F16, BF16, Q8_0, Q4_0 — the
            quantized ones by tests/reference/ggml_quants.py; MHA/GQA, tied,
            explicit head_dim, linear rope scaling): `tulu logits -m file.gguf` against
            (a) hf_llama on the weights the reference reader decodes and un-permutes from the
                same file, max |Δlogit| ≤ 1e-4 for the float formats (we compute in fp32
                whatever the storage); for Q8_0/Q4_0 the activations are Q8_0-quantized as in
                llama.cpp: ≤ 0.05 and top-1 agreement ≥ 90 %, and
            (b) `tulu logits` on the HF directory: ≤ 1e-4 for F32 (only eps and theta are
                stored as float32 in GGUF); for F16/BF16 the difference is that of rounding
                the weights, printed and bounded by 0.05 / 0.2 / 0.2 / 1.0 for F16 / BF16 /
                Q8_0 / Q4_0 (logits O(1)).
  quantize  `tulu quantize HF OUT --type f32|f16|bf16|q8_0|q4_0` parsed by the reference reader: every
            llama.* / tokenizer.* key against the config, tokenizer.model (via the sentencepiece
            package) and tokenizer_config.json; tensor names, dims, types and bytes bit-exact
            against the reference writer's encoding of the same weights; then its logits as in
            (b).
  k-quants  a GGUF whose 2-D tensors are random Q4_K or Q6_K blocks (as llama-quantize files
            hold; we read them, not write them): `tulu logits` against hf_llama on the weights
            dequantized by tests/reference/ggml_quants.py (what the previous dequantize-to-fp32
            path computed): the activations are Q8_K-quantized as in llama.cpp, so max |Δ| /
            max |logit| ≤ 0.05 and top-1 agreement ≥ 90 %.
  header    GGUF v2 files and files with general.alignment = 64 / 8 give the same logits as
            the v3, 32-aligned file (bit-identical).
  requant   `tulu quantize` of the reference F32 GGUF to Q8_0: tensors byte-identical to `tulu
            quantize` of the HF directory to Q8_0, same config keys, tokenizer keys copied.
  -m DIR    a directory holding one .gguf loads it; two .gguf files are an error naming both.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

import gguf_reference as gr
import hf_checkpoint
from hf_llama import LlamaReference

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "gguf")
TOKENIZER_MODEL = os.path.join(hf_checkpoint.TOKENIZER_DIR, "tokenizer.model")
TOLERANCE = 1e-4
ROUNDING_BOUND = {gr.GGML_F32: TOLERANCE, gr.GGML_F16: 0.05, gr.GGML_BF16: 0.2}
RELATIVE_BOUND = {gr.GGML_Q8_0: 0.1, gr.GGML_Q4_0: 0.5}
# Quantized weights are multiplied with Q8_0-quantized activations (as llama.cpp does), so
# against hf_llama on the exactly dequantized weights the difference is that of quantizing
# the activations: bounded here; the top-1 token must agree at ≥ 90 % of positions.
DEQUANTIZED_BOUND = {gr.GGML_Q8_0: 0.05, gr.GGML_Q4_0: 0.05}  # relative to max |logit|
K_QUANT_BOUND = 0.05  # Q4_K / Q6_K weights times Q8_K activations, relative to max |logit|
TYPE_NAMES = {gr.GGML_F32: "F32", gr.GGML_F16: "F16", gr.GGML_BF16: "BF16", gr.GGML_Q8_0: "Q8_0",
              gr.GGML_Q4_0: "Q4_0"}
FILE_TYPES = {"F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7, "Q4_0": 2}

CASES = [
    ("gqa", dict(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=1000, eps=1e-5)),
    ("mha_tied_head_dim32_linear_rope", dict(hidden=64, intermediate=128, layers=2, heads=4, vocab=1000,
                                             head_dim=32, tie=True, rope_theta=500000.0,
                                             rope_scaling={"type": "linear", "factor": 2.0})),
    ("gqa_kv1_vocab32000", dict(hidden=96, intermediate=256, layers=1, heads=6, kv_heads=1, vocab=32000)),
]

failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        failures.append(message)


def run(args, expect_ok=True):
    result = subprocess.run([TULU] + args, capture_output=True, text=True)
    if expect_ok and result.returncode != 0:
        raise AssertionError(f"tulu {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def logits(model, ids, name, extra=()):
    out = os.path.join(TMP, name + ".npy")
    run(["logits", "-m", model, "--ids", ",".join(map(str, ids)), "-o", out, "-t", "2", *extra])
    return np.load(out).astype(np.float64)


def max_diff(a, b):
    return float(np.max(np.abs(a - np.asarray(b, dtype=np.float64))))


def relative_diff(a, b):
    """max |Δ| / max |b|: the quantized formats' error scales with the logits."""
    return max_diff(a, b) / float(np.max(np.abs(b)))


def check_rounding(label, ggml_type, got, hf_logits):
    if ggml_type in RELATIVE_BOUND:
        d, bound = relative_diff(got, hf_logits), RELATIVE_BOUND[ggml_type]
        top1 = float(np.mean(got.argmax(1) == hf_logits.argmax(1)))
        check(d <= bound, f"{label}: max |Δ| / max |logit| = {d:.3e} (bound {bound}), top-1 agreement {top1:.2f}")
    else:
        d, bound = max_diff(got, hf_logits), ROUNDING_BOUND[ggml_type]
        check(d <= bound, f"{label}: max |Δ| = {d:.3e} (bound {bound})")


def test_load(name, config, state, hf_dir, ids, hf_logits):
    for ggml_type in TYPE_NAMES:
        label = f"{name} {TYPE_NAMES[ggml_type]}"
        path = os.path.join(TMP, f"{name}_{TYPE_NAMES[ggml_type]}.gguf")
        metadata = gr.llama_metadata(config) + gr.tokenizer_metadata(TOKENIZER_MODEL)
        gr.write_gguf(path, metadata, gr.llama_tensors(config, state, ggml_type))
        ref_config, ref_state = gr.hf_from_llama_gguf(gr.read_gguf(path))
        expected = LlamaReference(ref_config, ref_state).forward(ids)[0].numpy()
        got = logits(path, ids, f"{name}_{TYPE_NAMES[ggml_type]}")
        if ggml_type in DEQUANTIZED_BOUND:
            d, bound = relative_diff(got, expected), DEQUANTIZED_BOUND[ggml_type]
            top1 = float(np.mean(got.argmax(1) == expected.argmax(1)))
            check(d <= bound and top1 >= 0.9, f"{label}: tulu logits on GGUF vs hf_llama on the dequantized GGUF: "
                                              f"max |Δ| / max |logit| = {d:.3e} (bound {bound}), top-1 agreement "
                                              f"{top1:.2f} (bound 0.9)")
        else:
            d = max_diff(got, expected)
            check(d <= TOLERANCE, f"{label}: tulu logits on GGUF vs hf_llama on the decoded GGUF: max |Δ| = {d:.3e}")
        check_rounding(label + ": tulu logits on GGUF vs on the HF directory (f32)", ggml_type, got, hf_logits)


def expected_metadata(config, hf_dir, type_name):
    md = dict((k, v) for k, _, v in gr.llama_metadata(config))
    with open(os.path.join(hf_dir, "tokenizer_config.json")) as f:
        tc = json.load(f)
    tok = dict((k, v) for k, _, v in gr.tokenizer_metadata(TOKENIZER_MODEL, tc.get("add_bos_token", True),
                                                           tc.get("add_eos_token", False), tc.get("chat_template")))
    md.update(tok)
    md["general.file_type"] = FILE_TYPES[type_name]
    if type_name.startswith("Q"):
        md["general.quantization_version"] = 2
    return md


def test_quantize(name, config, state, hf_dir, ids, hf_logits):
    for ggml_type in TYPE_NAMES:
        type_name = TYPE_NAMES[ggml_type]
        out = os.path.join(TMP, f"{name}_quantized_{type_name}.gguf")
        run(["quantize", hf_dir, out, "--type", type_name.lower(), "--name", "test"])
        g = gr.read_gguf(out)
        md = {k: v for k, (_, v) in g.metadata.items()}
        expected = expected_metadata(config, hf_dir, type_name)
        vocab = config["vocab_size"]
        if vocab > len(expected["tokenizer.ggml.tokens"]):  # padded as llama.cpp does
            extra = range(len(expected["tokenizer.ggml.tokens"]), vocab)
            expected["tokenizer.ggml.tokens"] += [f"[PAD{i}]" for i in extra]
            expected["tokenizer.ggml.scores"] += [-1000.0] * len(extra)
            expected["tokenizer.ggml.token_type"] += [5] * len(extra)
        wrong = []
        for key, value in expected.items():
            got = md.get(key)
            if isinstance(value, float):
                same = got is not None and np.float32(got) == np.float32(value)
            elif isinstance(value, list) and value and isinstance(value[0], float):
                same = got is not None and np.array_equal(np.float32(got), np.float32(value))
            else:
                same = got == value
            if not same:
                wrong.append(f"{key}: {str(got)[:60]} != {str(value)[:60]}")
        check(not wrong, f"{name} quantize {type_name}: {len(expected)} metadata keys as expected"
                         + (f"; wrong: {wrong}" if wrong else ""))
        check(g.version == 3 and g.alignment == 32, f"{name} quantize {type_name}: version {g.version}, "
                                                      f"alignment {g.alignment}")
        want = gr.llama_tensors(config, state, ggml_type)
        mismatched = [n for n, t, shape, data in want
                      if n not in g.tensors or g.tensors[n][0] != t or g.tensors[n][1] != list(reversed(shape))
                      or g.tensors[n][2] != data]
        check(not mismatched and len(g.tensors) == len(want),
              f"{name} quantize {type_name}: {len(want)} tensors, names/types/dims/bytes bit-exact vs the "
              f"reference writer" + (f"; differ: {mismatched[:4]}" if mismatched else ""))
        got = logits(out, ids, f"{name}_quantized_{type_name}")
        check_rounding(f"{name} quantize {type_name}: logits vs the HF directory", ggml_type, got, hf_logits)


def test_header_variants(name, config, state, ids):
    base = logits(os.path.join(TMP, f"{name}_F32.gguf"), ids, name + "_base")
    metadata = gr.llama_metadata(config) + gr.tokenizer_metadata(TOKENIZER_MODEL)
    tensors = gr.llama_tensors(config, state, gr.GGML_F32)
    for label, kwargs, extra in (("v2", dict(version=2), []),
                                 ("alignment 64", dict(alignment=64), [("general.alignment", "uint32", 64)]),
                                 ("alignment 8", dict(alignment=8), [("general.alignment", "uint32", 8)])):
        path = os.path.join(TMP, f"{name}_{label.replace(' ', '_')}.gguf")
        gr.write_gguf(path, metadata + extra, tensors, **kwargs)
        d = max_diff(logits(path, ids, name + "_variant"), base)
        check(d == 0.0, f"{name} GGUF {label}: logits identical to the v3 file: max |Δ| = {d:.3e}")
    # --no-mmap reads the same bytes into memory instead of mapping them.
    for type_name in ("F32", "Q8_0", "Q4_0"):
        path = os.path.join(TMP, f"{name}_{type_name}.gguf")  # written by test_load
        mapped = logits(path, ids, name + "_mapped")
        d = max_diff(logits(path, ids, name + "_in_memory", ["--no-mmap"]), mapped)
        check(d == 0.0, f"{name} {type_name} GGUF with --no-mmap: logits identical to the mapped file: "
                        f"max |Δ| = {d:.3e}")


def test_requantize(name, hf_dir):
    source = os.path.join(TMP, f"{name}_F32.gguf")
    from_gguf = os.path.join(TMP, f"{name}_requantized.gguf")
    run(["quantize", source, from_gguf, "--type", "q8_0", "--name", "test"])
    got, want = gr.read_gguf(from_gguf), gr.read_gguf(os.path.join(TMP, f"{name}_quantized_Q8_0.gguf"))
    src = gr.read_gguf(source)
    same_tensors = got.tensors == want.tensors
    llama_keys = {k: v for k, v in want.metadata.items() if not k.startswith("tokenizer.")}
    same_config = all(got.metadata.get(k) == v for k, v in llama_keys.items())
    tokenizer_keys = {k: v for k, v in src.metadata.items() if k.startswith("tokenizer.")}
    same_tokenizer = {k: v for k, v in got.metadata.items() if k.startswith("tokenizer.")} == tokenizer_keys
    check(same_tensors and same_config and same_tokenizer,
          f"{name}: tulu quantize F32 GGUF -> Q8_0: {len(got.tensors)} tensors byte-identical to HF dir -> Q8_0 "
          f"({same_tensors}), {len(llama_keys)} config keys equal ({same_config}), {len(tokenizer_keys)} tokenizer "
          f"keys copied from the source ({same_tokenizer})")


def test_directory(name, hf_dir, ids, hf_logits):
    d1 = os.path.join(TMP, name + "_gguf_dir")
    shutil.rmtree(d1, ignore_errors=True)
    os.makedirs(d1)
    shutil.copy(os.path.join(TMP, f"{name}_F32.gguf"), os.path.join(d1, "model-f32.gguf"))
    d = max_diff(logits(d1, ids, name + "_dir"), hf_logits)
    check(d <= TOLERANCE, f"{name}: -m DIR with one .gguf loads it: max |Δ| vs HF = {d:.3e}")
    shutil.copy(os.path.join(TMP, f"{name}_F16.gguf"), os.path.join(d1, "model-f16.gguf"))
    r = run(["logits", "-m", d1, "--ids", "1,2", "-o", os.path.join(TMP, "x.npy")], expect_ok=False)
    check(r.returncode == 1 and "model-f16.gguf" in r.stderr and "model-f32.gguf" in r.stderr,
          f"{name}: -m DIR with two .gguf files is an error naming both: {r.stderr.strip()}")


def test_k_quants():
    config = hf_checkpoint.make_config(hidden=256, intermediate=512, layers=1, heads=4, kv_heads=2, vocab=512,
                                       dtype="float32")
    state = hf_checkpoint.make_state_dict(config, seed=77)
    gen = torch.Generator().manual_seed(78)
    ids = [1] + torch.randint(0, config["vocab_size"], (15,), generator=gen).tolist()
    for ggml_type, label in ((gr.GGML_Q4_K, "Q4_K"), (gr.GGML_Q6_K, "Q6_K")):
        tensors = []
        for name, t in state.items():
            if t.dim() == 1:
                tensors.append((gr.gguf_name(name), gr.GGML_F32, list(t.shape), gr.encode(t, gr.GGML_F32)))
            else:
                magnitude = 1.0 if "embed" in name else 2.0 / t.shape[1] ** 0.5
                tensors.append((gr.gguf_name(name), ggml_type, list(t.shape),
                                gr.random_k_quant_rows(list(t.shape), ggml_type, gen, magnitude)))
        path = os.path.join(TMP, f"k_quant_{label}.gguf")
        gr.write_gguf(path, gr.llama_metadata(config) + gr.tokenizer_metadata(TOKENIZER_MODEL), tensors)
        ref_config, ref_state = gr.hf_from_llama_gguf(gr.read_gguf(path))
        expected = LlamaReference(ref_config, ref_state).forward(ids)[0].numpy()
        got = logits(path, ids, f"k_quant_{label}")
        d = relative_diff(got, expected)
        top1 = float(np.mean(got.argmax(1) == expected.argmax(1)))
        check(d <= K_QUANT_BOUND and top1 >= 0.9,
              f"{label} GGUF (random blocks, hidden 256): tulu logits (Q8_K activations) vs hf_llama on the "
              f"dequantized weights: max |Δ| / max |logit| = {d:.3e} (bound {K_QUANT_BOUND}), top-1 agreement "
              f"{top1:.2f} (bound 0.9; max |logit| {np.max(np.abs(expected)):.1f})")


def main():
    os.makedirs(TMP, exist_ok=True)
    for index, (name, kwargs) in enumerate(CASES):
        config = hf_checkpoint.make_config(dtype="float32", **kwargs)
        state = hf_checkpoint.make_state_dict(config, seed=300 + index)
        hf_dir = os.path.join(TMP, name + "_hf")
        hf_checkpoint.write_model_dir(hf_dir, config, state, tokenizer=True)
        gen = torch.Generator().manual_seed(400 + index)
        ids = [1] + torch.randint(0, config["vocab_size"], (23,), generator=gen).tolist()
        print(f"{name}: {kwargs}")
        hf_logits = logits(hf_dir, ids, name + "_hf")
        test_load(name, config, state, hf_dir, ids, hf_logits)
        test_quantize(name, config, state, hf_dir, ids, hf_logits)
        if index == 0:
            test_directory(name, hf_dir, ids, hf_logits)
            test_header_variants(name, config, state, ids)
            test_requantize(name, hf_dir)
    test_k_quants()
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all GGUF checks passed")


if __name__ == "__main__":
    main()
