"""GGUF files written and read with struct, independently of tulu (gguf-py is not installed),
following the GGUF spec (ggml/docs/gguf.md) and llama.cpp's convert_hf_to_gguf.py.

Layout (little-endian): b"GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv × (string key,
u32 value type, value); n_tensors × (string name, u32 n_dims, u64 dims[n_dims] innermost first,
u32 ggml type, u64 offset relative to the data section); zero padding to general.alignment
(default 32); data, each tensor at an aligned offset. string = u64 length + UTF-8 bytes;
array = u32 element type, u64 count, elements.

API:
    write_gguf(path, metadata, tensors, alignment=32, version=3)
        metadata: list of (key, value_type, value); value_type one of the VT_* names below, or
                  ("array", VT_x) for arrays. tensors: list of (name, ggml_type, numpy array in
                  PyTorch order, raw bytes) — dims are taken from the array's shape.
    g = read_gguf(path) -> GgufContents(version, alignment, metadata {key: (type, value)},
                           tensors {name: (ggml_type, dims innermost first, bytes)})
    llama_gguf_from_hf(config, state, ggml_type, tokenizer_dir=None) -> (metadata, tensors)
        what llama.cpp's converter writes for an HF Llama checkpoint: llama.* keys,
        tokenizer.ggml.* from tokenizer.model, q/k rows permuted, 1-D tensors F32
        (ggml_type F32, F16, BF16, Q8_0 or Q4_0; the quantized ones via ggml_quants.py).
    hf_from_llama_gguf(g) -> (config dict, {HF name: float32 tensor}) with q/k un-permuted.
    permute_qk(w, n_head) / unpermute_qk(w, n_head): llama.cpp's LlamaModel.permute and inverse.
"""

import collections
import struct

import numpy as np
import torch

import ggml_quants

VT = {"uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5, "float32": 6, "bool": 7,
      "string": 8, "array": 9, "uint64": 10, "int64": 11, "float64": 12}
VT_NAMES = {v: k for k, v in VT.items()}
SCALAR_FORMATS = {"uint8": "<B", "int8": "<b", "uint16": "<H", "int16": "<h", "uint32": "<I", "int32": "<i",
                  "float32": "<f", "bool": "<?", "uint64": "<Q", "int64": "<q", "float64": "<d"}
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K, GGML_BF16 = 0, 1, 2, 8, 12, 14, 30
GGML_BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q4_0: (32, 18), GGML_Q8_0: (32, 34),
              GGML_Q4_K: (256, 144), GGML_Q6_K: (256, 210)}
DEQUANTIZE = {GGML_Q8_0: ggml_quants.dequantize_q8_0, GGML_Q4_0: ggml_quants.dequantize_q4_0,
              GGML_Q4_K: ggml_quants.dequantize_q4_k, GGML_Q6_K: ggml_quants.dequantize_q6_k}

GgufContents = collections.namedtuple("GgufContents", "version alignment metadata tensors")

LAYER_NAMES = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
               ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
               ("ffn_down", "mlp.down_proj"), ("attn_norm", "input_layernorm"),
               ("ffn_norm", "post_attention_layernorm")]
GLOBAL_NAMES = [("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head")]


def gguf_name(hf):
    for g, h in GLOBAL_NAMES:
        if hf == h + ".weight":
            return g + ".weight"
    parts = hf.split(".")  # model.layers.N.<a>.<b>.weight
    rest = ".".join(parts[3:-1])
    for g, h in LAYER_NAMES:
        if rest == h:
            return f"blk.{parts[2]}.{g}.weight"
    raise KeyError(hf)


def hf_name(name):
    for g, h in GLOBAL_NAMES:
        if name == g + ".weight":
            return h + ".weight"
    parts = name.split(".")
    for g, h in LAYER_NAMES:
        if parts[2] == g:
            return f"model.layers.{parts[1]}.{h}.weight"
    raise KeyError(name)


def permute_qk(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: rotate-half → Meta's interleaved rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(vtype, value):
    if vtype == "string":
        return _string(value)
    if isinstance(vtype, tuple):
        _, elem = vtype
        return struct.pack("<IQ", VT[elem], len(value)) + b"".join(_value(elem, v) for v in value)
    return struct.pack(SCALAR_FORMATS[vtype], value)


def write_gguf(path, metadata, tensors, alignment=32, version=3):
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata)))
    for key, vtype, value in metadata:
        code = VT["array"] if isinstance(vtype, tuple) else VT[vtype]
        out += _string(key) + struct.pack("<I", code) + _value(vtype, value)
    offset = 0
    layout = []
    for name, ggml_type, shape, data in tensors:
        dims = list(reversed(shape))
        out += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        layout.append((offset, data))
        offset = (offset + len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    start = len(out)
    for offset, data in layout:
        out += b"\0" * (start + offset - len(out)) + data
    with open(path, "wb") as f:
        f.write(out)


def read_gguf(path):
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n]
        pos += n
        return s.decode("utf-8")

    def value(code):
        name = VT_NAMES[code]
        if name == "string":
            return string()
        if name == "array":
            elem, count = take("<IQ")
            return [value(elem) for _ in range(count)]
        return take(SCALAR_FORMATS[name])

    assert buf[:4] == b"GGUF", f"{path}: bad magic"
    pos = 4
    version, n_tensors, n_kv = take("<IQQ")
    metadata = collections.OrderedDict()
    for _ in range(n_kv):
        key = string()
        code = take("<I")
        metadata[key] = (VT_NAMES[code], value(code))
    alignment = metadata.get("general.alignment", ("uint32", 32))[1]
    infos = []
    for _ in range(n_tensors):
        name = string()
        n_dims = take("<I")
        dims = [take("<Q") for _ in range(n_dims)]
        ggml_type, offset = take("<IQ")
        infos.append((name, dims, ggml_type, offset))
    start = (pos + alignment - 1) // alignment * alignment
    tensors = collections.OrderedDict()
    for name, dims, ggml_type, offset in infos:
        block, size = GGML_BLOCK[ggml_type]
        nbytes = int(np.prod(dims)) // block * size
        assert start + offset + nbytes <= len(buf), f"{name} out of bounds"
        tensors[name] = (ggml_type, dims, buf[start + offset:start + offset + nbytes])
    return GgufContents(version, alignment, metadata, tensors)


def encode(t, ggml_type):
    """float tensor → raw bytes of a GGUF type: float types round to nearest even as torch
    does; Q8_0/Q4_0 by tests/reference/ggml_quants.py (ggml's reference quantizers)."""
    if ggml_type == GGML_F32:
        return t.float().contiguous().numpy().tobytes()
    if ggml_type == GGML_F16:
        return t.float().to(torch.float16).contiguous().view(torch.int16).numpy().tobytes()
    if ggml_type == GGML_BF16:
        return t.float().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
    if ggml_type == GGML_Q8_0:
        return ggml_quants.quantize_q8_0(t.float().contiguous().numpy().ravel())
    if ggml_type == GGML_Q4_0:
        return ggml_quants.quantize_q4_0(t.float().contiguous().numpy().ravel())
    raise ValueError(f"no encoder for ggml type {ggml_type}")


def decode(data, ggml_type, dims):
    shape = list(reversed(dims))
    if ggml_type == GGML_F32:
        return torch.from_numpy(np.frombuffer(data, dtype=np.float32).copy()).reshape(shape)
    if ggml_type in DEQUANTIZE:
        return torch.from_numpy(DEQUANTIZE[ggml_type](data).copy()).reshape(shape)
    raw = torch.from_numpy(np.frombuffer(data, dtype=np.int16).copy()).reshape(shape)
    if ggml_type == GGML_F16:
        return raw.view(torch.float16).float()
    if ggml_type == GGML_BF16:
        return raw.view(torch.bfloat16).float()
    raise ValueError(f"no decoder for ggml type {ggml_type}")


def random_k_quant_rows(shape, ggml_type, generator, magnitude):
    """Random Q4_K / Q6_K blocks for a [rows, cols] tensor (cols a multiple of 256): random
    quants and sub-block scales, f16 super-block scales chosen so that weights are about
    ±magnitude. Stands in for llama-quantize's output, which we only need to read."""
    block, size = GGML_BLOCK[ggml_type]
    n_blocks = shape[0] * shape[1] // block
    raw = torch.randint(0, 256, (n_blocks, size), generator=generator, dtype=torch.int32).to(torch.uint8).numpy()
    if ggml_type == GGML_Q4_K:  # w = d·sc·q − dmin·m with sc, m ≤ 63, q ≤ 15
        raw[:, 0:2] = np.full((n_blocks, 1), magnitude / 600, dtype=np.float16).view(np.uint8)
        raw[:, 2:4] = np.full((n_blocks, 1), magnitude / 100, dtype=np.float16).view(np.uint8)
    else:  # w = d·sc·(q − 32) with |sc| ≤ 128, |q − 32| ≤ 32
        raw[:, 208:210] = np.full((n_blocks, 1), magnitude / 2000, dtype=np.float16).view(np.uint8)
    return raw.tobytes()


def head_dim(config):
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def llama_metadata(config, name="test"):
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    md = [("general.architecture", "string", "llama"), ("general.name", "string", name),
          ("llama.vocab_size", "uint32", config["vocab_size"]),
          ("llama.context_length", "uint32", config["max_position_embeddings"]),
          ("llama.embedding_length", "uint32", config["hidden_size"]),
          ("llama.block_count", "uint32", config["num_hidden_layers"]),
          ("llama.feed_forward_length", "uint32", config["intermediate_size"]),
          ("llama.rope.dimension_count", "uint32", head_dim(config)),
          ("llama.attention.head_count", "uint32", heads),
          ("llama.attention.head_count_kv", "uint32", kv_heads),
          ("llama.attention.layer_norm_rms_epsilon", "float32", config["rms_norm_eps"]),
          ("llama.rope.freq_base", "float32", config.get("rope_theta", 10000.0))]
    if head_dim(config) * heads != config["hidden_size"]:
        md += [("llama.attention.key_length", "uint32", head_dim(config)),
               ("llama.attention.value_length", "uint32", head_dim(config))]
    scaling = config.get("rope_scaling")
    if scaling and scaling.get("type") == "linear":
        md += [("llama.rope.scaling.type", "string", "linear"),
               ("llama.rope.scaling.factor", "float32", scaling["factor"])]
    return md


def sentencepiece_vocab(tokenizer_model_path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=tokenizer_model_path)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # llama.cpp's SentencePieceTokenTypes: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        types.append(t)
    return tokens, scores, types, sp


def tokenizer_metadata(tokenizer_model_path, add_bos=True, add_eos=False, chat_template=None):
    tokens, scores, types, sp = sentencepiece_vocab(tokenizer_model_path)
    md = [("tokenizer.ggml.model", "string", "llama"), ("tokenizer.ggml.tokens", ("array", "string"), tokens),
          ("tokenizer.ggml.scores", ("array", "float32"), scores),
          ("tokenizer.ggml.token_type", ("array", "int32"), types),
          ("tokenizer.ggml.bos_token_id", "uint32", sp.bos_id()),
          ("tokenizer.ggml.eos_token_id", "uint32", sp.eos_id()),
          ("tokenizer.ggml.unknown_token_id", "uint32", sp.unk_id()),
          ("tokenizer.ggml.add_bos_token", "bool", add_bos), ("tokenizer.ggml.add_eos_token", "bool", add_eos)]
    if chat_template is not None:
        md.append(("tokenizer.chat_template", "string", chat_template))
    return md


def llama_tensors(config, state, ggml_type):
    """(name, type, shape, bytes) in state order: q/k permuted, 1-D tensors F32."""
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    out = []
    for name, t in state.items():
        w = t.float()
        if name.endswith("q_proj.weight"):
            w = permute_qk(w, heads)
        elif name.endswith("k_proj.weight"):
            w = permute_qk(w, kv_heads)
        gtype = GGML_F32 if w.dim() == 1 else ggml_type
        if GGML_BLOCK[gtype][0] > 1 and w.shape[-1] % GGML_BLOCK[gtype][0] != 0:
            gtype = GGML_F16  # convert_hf_to_gguf.py's fallback when rows are not whole blocks
        out.append((gguf_name(name), gtype, list(w.shape), encode(w, gtype)))
    return out


def hf_from_llama_gguf(g):
    md = {k: v for k, (_, v) in g.metadata.items()}
    heads = md["llama.attention.head_count"]
    kv_heads = md.get("llama.attention.head_count_kv", heads)
    config = {"hidden_size": md["llama.embedding_length"], "intermediate_size": md["llama.feed_forward_length"],
              "num_hidden_layers": md["llama.block_count"], "num_attention_heads": heads,
              "num_key_value_heads": kv_heads, "rms_norm_eps": md["llama.attention.layer_norm_rms_epsilon"],
              "rope_theta": md.get("llama.rope.freq_base", 10000.0),
              "max_position_embeddings": md.get("llama.context_length", 2048),
              "vocab_size": g.tensors["token_embd.weight"][1][1],
              "tie_word_embeddings": "output.weight" not in g.tensors, "rope_scaling": None,
              "hidden_act": "silu", "model_type": "llama", "torch_dtype": "float32"}
    if "llama.attention.key_length" in md:
        config["head_dim"] = md["llama.attention.key_length"]
    if md.get("llama.rope.scaling.type") == "linear":
        config["rope_scaling"] = {"type": "linear", "factor": md["llama.rope.scaling.factor"]}
    state = collections.OrderedDict()
    for name, (ggml_type, dims, data) in g.tensors.items():
        w = decode(data, ggml_type, dims)
        if name.endswith("attn_q.weight"):
            w = unpermute_qk(w, heads)
        elif name.endswith("attn_k.weight"):
            w = unpermute_qk(w, kv_heads)
        state[hf_name(name)] = w
    return config, state
