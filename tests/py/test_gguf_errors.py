"""Corrupt and unsupported GGUF files give a clear error (exit 1, "error:" and the file, the
field or tensor named), never a crash — also under the sanitizer build (ctest runs this
script with whichever tulu it built).

Files are built byte by byte from a valid small Llama GGUF (tests/reference/gguf_reference.py)
with one defect each: header (magic, version, counts), metadata (value types, lengths, array
counts, bools, duplicate keys, alignment), tensor infos (n_dims, dims overflow, ggml type,
offsets misaligned / out of bounds / overlapping), every truncation point of the header, the
llama.* config (missing keys, wrong architecture, heads not dividing), tensor shapes and types,
and the tokenizer vocabulary (lengths, ids, unknown-token type).
"""

import os
import struct
import subprocess
import sys
import tempfile

import gguf_reference as gr
import hf_checkpoint

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "gguf_errors")
S = gr._string

CONFIG = hf_checkpoint.make_config(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, vocab=300)
STATE = hf_checkpoint.make_state_dict(CONFIG, seed=1)
TOKENIZER_MODEL = os.path.join(hf_checkpoint.TOKENIZER_DIR, "tokenizer.model")


def kv(key, vtype, value):
    code = gr.VT["array"] if isinstance(vtype, tuple) else gr.VT[vtype]
    return S(key) + struct.pack("<I", code) + gr._value(vtype, value)


def build(metadata=None, tensors=None, magic=b"GGUF", version=3, n_kv=None, n_tensors=None, raw_kv=b"",
          raw_infos=None, alignment=32, data_extra=b""):
    """A GGUF file: metadata [(key, type, value)], tensors [(name, ggml_type, shape, bytes)] at
    aligned offsets; raw_kv appended to the metadata bytes; raw_infos replaces the tensor infos."""
    metadata = gr.llama_metadata(CONFIG) if metadata is None else metadata
    tensors = gr.llama_tensors(CONFIG, STATE, gr.GGML_F32) if tensors is None else tensors
    kv_bytes = b"".join(kv(*m) for m in metadata) + raw_kv
    count_kv = len(metadata) + (1 if raw_kv else 0) if n_kv is None else n_kv
    infos, data, offset = b"", b"", 0
    for name, t, shape, blob in tensors:
        dims = list(reversed(shape))
        infos += S(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", t, offset)
        data += blob + b"\0" * ((-len(blob)) % alignment)
        offset += len(blob) + (-len(blob)) % alignment
    if raw_infos is not None:
        infos = raw_infos
    count_t = len(tensors) if n_tensors is None else n_tensors
    out = magic + struct.pack("<IQQ", version, count_t, count_kv) + kv_bytes + infos
    out += b"\0" * ((-len(out)) % alignment)
    return out + data + data_extra


def info(name, dims, ggml_type, offset):
    return S(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + \
        struct.pack("<IQ", ggml_type, offset)


def cases():
    md = gr.llama_metadata(CONFIG)
    tensors = gr.llama_tensors(CONFIG, STATE, gr.GGML_F32)
    valid = build()
    yield "bad magic", build(magic=b"GGUG"), "bad magic"
    yield "version 1", build(version=1), "version 1"
    yield "version 4", build(version=4), "version 4"
    yield "empty file", b"", "truncated"
    yield "kv count huge", build(n_kv=1 << 60), "metadata_kv_count"
    yield "tensor count huge", build(n_tensors=1 << 60), "tensor_count"
    yield "kv count one too many", build(n_kv=len(md) + 1), "truncated file"
    yield "unknown value type", build(raw_kv=S("x.y") + struct.pack("<I", 13) + b"\0" * 8), "unknown value type 13"
    yield "string length huge", build(raw_kv=S("x.y") + struct.pack("<IQ", 8, 1 << 62)), "metadata 'x.y'"
    yield "array count huge", build(raw_kv=S("x.arr") + struct.pack("<IIQ", 9, 4, 1 << 61)), "metadata 'x.arr'"
    yield "nested arrays too deep", build(raw_kv=S("x.deep") + struct.pack("<I", 9) +
                                          struct.pack("<IQ", 9, 1) * 6 + struct.pack("<IQ", 4, 0)), "nested"
    yield "bool value 2", build(raw_kv=S("x.b") + struct.pack("<IB", 7, 2)), "bool value 2"
    yield "duplicate key", build(metadata=md + [md[0]]), "appears twice"
    yield "alignment zero", build(metadata=md + [("general.alignment", "uint32", 0)]), "general.alignment"
    yield "alignment 48", build(metadata=md + [("general.alignment", "uint32", 48)]), "power of two"
    yield "alignment wrong type", build(metadata=md + [("general.alignment", "string", "32")]), "general.alignment"
    yield "n_dims 0", build(raw_infos=info("token_embd.weight", [], 0, 0), n_tensors=1), "n_dims"
    yield "n_dims 5", build(raw_infos=info("token_embd.weight", [1, 1, 1, 1, 1], 0, 0), n_tensors=1), "n_dims"
    yield "dims overflow", build(raw_infos=info("token_embd.weight", [1 << 40, 1 << 40], 0, 0), n_tensors=1), \
        "overflow"
    yield "unknown ggml type", build(raw_infos=info("token_embd.weight", [32, 300], 99, 0), n_tensors=1), \
        "unknown ggml tensor type 99"
    yield "q8_0 row not whole blocks", build(raw_infos=info("token_embd.weight", [33, 300], 8, 0), n_tensors=1), \
        "block size"
    yield "misaligned offset", build(raw_infos=info("token_embd.weight", [32, 300], 0, 4), n_tensors=1), \
        "not a multiple of the alignment"
    yield "offset out of bounds", build(raw_infos=info("token_embd.weight", [32, 300], 0, 1 << 40), n_tensors=1), \
        "extends past the end"
    yield "overlapping tensors", build(raw_infos=info("a", [32], 0, 0) + info("b", [32], 0, 64), n_tensors=2), \
        "overlaps"
    yield "duplicate tensor name", build(raw_infos=info("a", [8], 0, 0) + info("a", [8], 0, 32), n_tensors=2), \
        "appears twice"
    yield "data truncated", valid[:-100], "extends past the end"
    header_end = len(build(tensors=[])) - 8  # approximate end of the metadata
    for cut in sorted(set([5, 9, 17, 23, 24, 40, 100, header_end // 2, header_end, header_end + 30])):
        yield f"truncated at byte {cut}", valid[:cut], "truncated"
    yield "architecture gpt2", build(metadata=[("general.architecture", "string", "gpt2")] + md[1:]), "gpt2"
    yield "missing embedding_length", build(metadata=[m for m in md if m[0] != "llama.embedding_length"]), \
        "llama.embedding_length"
    yield "embedding_length is a string", build(metadata=[m if m[0] != "llama.embedding_length" else
                                                          (m[0], "string", "32") for m in md]), "expected an integer"
    yield "heads not dividing", build(metadata=[m if m[0] != "llama.attention.head_count" else
                                                (m[0], "uint32", 5) for m in md]), "head"
    yield "partial rotary", build(metadata=[m if m[0] != "llama.rope.dimension_count" else
                                            (m[0], "uint32", 4) for m in md]), "llama.rope.dimension_count = 4"
    yield "rope scaling yarn", build(metadata=md + [("llama.rope.scaling.type", "string", "yarn")]), "yarn"
    bad_shape = [(n, t, [s[0] * 2] + s[1:] if n == "blk.0.attn_v.weight" else s,
                  b * 2 if n == "blk.0.attn_v.weight" else b) for n, t, s, b in tensors]
    yield "attn_v shape wrong", build(tensors=bad_shape), "self_attn.v_proj.weight"
    yield "missing tensor", build(tensors=[t for t in tensors if t[0] != "blk.0.ffn_up.weight"]), "missing"
    yield "unexpected tensor", build(tensors=tensors + [("rope_freqs.weight", 0, [4], b"\0" * 16)]), "rope_freqs"
    yield "unsupported Q5_K tensor", build(tensors=tensors + [("extra.weight", 13, [256], b"\0" * 176)]), \
        "Q5_K (13), which this build cannot compute with"


def vocab_cases():
    tok = gr.tokenizer_metadata(TOKENIZER_MODEL)
    md = gr.llama_metadata(CONFIG)

    def replace(key, vtype, value):
        return [(k, t, v) if k != key else (k, vtype, value) for k, t, v in tok]
    scores = dict((k, v) for k, _, v in tok)["tokenizer.ggml.scores"]
    types = dict((k, v) for k, _, v in tok)["tokenizer.ggml.token_type"]
    yield "scores shorter", replace("tokenizer.ggml.scores", ("array", "float32"), scores[:-1]), "tokenizer.ggml.scores"
    yield "token type 9", replace("tokenizer.ggml.token_type", ("array", "int32"), [9] + types[1:]), "token_type"
    yield "bos id out of range", replace("tokenizer.ggml.bos_token_id", "uint32", 10 ** 6), "bos_token_id"
    yield "unk not unknown", replace("tokenizer.ggml.unknown_token_id", "uint32", 5), "unknown"
    yield "model gpt2", replace("tokenizer.ggml.model", "string", "gpt2"), "gpt2"
    yield "tokens not strings", replace("tokenizer.ggml.tokens", ("array", "int32"), list(range(len(types)))), \
        "array of strings"
    yield "no tokens", [t for t in tok if t[0] != "tokenizer.ggml.tokens"], "tokenizer.ggml.tokens"
    del md


def main():
    os.makedirs(TMP, exist_ok=True)
    failures = []
    n = 0
    runs = [(name, data, expect, ["logits", "--ids", "1,2", "-o", os.path.join(TMP, "out.npy")])
            for name, data, expect in cases()]
    runs += [("vocab " + name, build(metadata=gr.llama_metadata(CONFIG) + tok), expect, ["tokenize", "-p", "hi"])
             for name, tok, expect in vocab_cases()]
    for name, data, expect, args in runs:
        path = os.path.join(TMP, name.replace(" ", "_") + ".gguf")
        with open(path, "wb") as f:
            f.write(data)
        cmd = [TULU, args[0], "-m", path] + args[1:]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        n += 1
        err = r.stderr.strip()
        ok = r.returncode == 1 and "error:" in err and path in err and expect in err and "Sanitizer" not in err
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: rc {r.returncode}: {err[:220]}")
        if not ok:
            failures.append(f"{name}: rc {r.returncode}, expected an error mentioning {expect!r}: {err[:400]}")
    if failures:
        print(f"{len(failures)} of {n} cases failed:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print(f"all {n} corrupt GGUF files gave clear errors")


if __name__ == "__main__":
    main()
