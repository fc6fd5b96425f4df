"""Random Hugging Face Llama checkpoints for tests, written and read with plain torch.

No safetensors / transformers package exists on this machine, so the safetensors format is
written and read here by hand (it is small: 8-byte little-endian header length, a JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
data; offsets are relative to the end of the header). PyTorch .bin files are real
torch.save output (zip archive + pickle), exactly what the hub's pytorch_model*.bin are.

API (import with PYTHONPATH including tests/reference):

    from hf_checkpoint import make_config, make_state_dict, write_model_dir, read_model_dir

    config = make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2,
                         vocab=32000, eps=1e-6, rope_theta=10000.0, tie=False,
                         rope_scaling=None, head_dim=None, max_pos=2048, dtype="float32")
        -> dict, a LlamaForCausalLM config.json as transformers writes it.
    state = make_state_dict(config, seed=0, dtype=None)
        -> OrderedDict {HF name: tensor} in transformers' order, tensors in `dtype`
           (default: config["torch_dtype"]). lm_head.weight is absent when tied.
    write_model_dir(path, config, state, fmt="safetensors" | "bin", shards=1,
                    tokenizer=True, generation_config=None, extra_tensors=None,
                    tied_lm_head_in_file=False)
        -> writes config.json, generation_config.json, the weights (single file, or
           `shards` files plus the HF index json), and the Llama 2 tokenizer files from
           data/llama2-tokenizer. Returns the list of weight files written.
    tensors = read_model_dir(path, keep_dtype=False)
        -> {name: tensor} read back from whichever weight files the directory holds
           (fp32 unless keep_dtype).
    write_safetensors(path, {name: tensor}, metadata={"format": "pt"}), read_safetensors(path)

Initialisation (make_state_dict), chosen so that activations and logits are O(1) and every
weight matters to the result (HF's std 0.02 everywhere would make logits ~0.1 and hide
errors in small terms):
    embed_tokens            normal(0, 1)
    linear [out, in]        normal(0, 1/sqrt(in))        (q/k/v/o, gate/up/down, lm_head)
    RMSNorm weights         1 + normal(0, 0.1)           (not all ones: a swapped norm shows)
All drawn in fp32 from one seeded torch.Generator in registry order, then cast to dtype.
"""

import collections
import json
import math
import os
import shutil
import struct

import torch

SOURCE_DIR = os.environ.get(
    "TULU_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOKENIZER_DIR = os.path.join(SOURCE_DIR, "data", "llama2-tokenizer")

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SAFETENSORS_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
SAFETENSORS_DTYPES = {v: k for k, v in SAFETENSORS_NAMES.items()}
# Same-size integer types used to move raw bytes in and out of numpy (which has no bf16).
RAW_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=None, vocab=32000,
                eps=1e-6, rope_theta=10000.0, tie=False, rope_scaling=None, head_dim=None,
                max_pos=2048, dtype="float32", bos=1, eos=2):
    """A config.json dict as transformers' LlamaConfig.to_json writes it (main fields)."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads if kv_heads is not None else heads,
        "vocab_size": vocab,
        "rms_norm_eps": eps,
        "rope_theta": rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": max_pos,
        "tie_word_embeddings": tie,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "attention_bias": False,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": dtype,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": None,
        "transformers_version": "4.35.2",
    }
    if head_dim is not None:
        config["head_dim"] = head_dim
    return config


def head_dim_of(config):
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def param_shapes(config):
    """[(name, shape)] in transformers' order (the same order tulu's registry uses)."""
    h, inter = config["hidden_size"], config["intermediate_size"]
    hd = head_dim_of(config)
    q_dim = config["num_attention_heads"] * hd
    kv_dim = config.get("num_key_value_heads", config["num_attention_heads"]) * hd
    shapes = [("model.embed_tokens.weight", [config["vocab_size"], h])]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes += [
            (p + "self_attn.q_proj.weight", [q_dim, h]),
            (p + "self_attn.k_proj.weight", [kv_dim, h]),
            (p + "self_attn.v_proj.weight", [kv_dim, h]),
            (p + "self_attn.o_proj.weight", [h, q_dim]),
            (p + "mlp.gate_proj.weight", [inter, h]),
            (p + "mlp.up_proj.weight", [inter, h]),
            (p + "mlp.down_proj.weight", [h, inter]),
            (p + "input_layernorm.weight", [h]),
            (p + "post_attention_layernorm.weight", [h]),
        ]
    shapes.append(("model.norm.weight", [h]))
    if not config.get("tie_word_embeddings", False):
        shapes.append(("lm_head.weight", [config["vocab_size"], h]))
    return shapes


def make_state_dict(config, seed=0, dtype=None):
    """Seeded random weights (see the module docstring for the scales)."""
    if dtype is None:
        dtype = TORCH_DTYPES[config.get("torch_dtype", "float32")]
    elif isinstance(dtype, str):
        dtype = TORCH_DTYPES[dtype]
    gen = torch.Generator().manual_seed(seed)
    state = collections.OrderedDict()
    for name, shape in param_shapes(config):
        if len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            t = torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        state[name] = t.to(dtype).contiguous()
    return state


def tensor_bytes(t):
    return t.contiguous().view(RAW_VIEW[t.dtype]).numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in the safetensors layout (data in the given order, 8-aligned)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # pad the header so data starts 8-aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """{name: tensor} in the stored dtype; metadata is dropped."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=RAW_VIEW[dtype]).view(dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def split_shards(names_and_sizes, shards):
    """Contiguous groups of names with roughly equal bytes (as transformers' sharding does)."""
    total = sum(size for _, size in names_and_sizes)
    target = total / shards
    groups, current, acc = [], [], 0
    for name, size in names_and_sizes:
        if current and acc + size > target * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(current)
            current = []
        current.append(name)
        acc += size
    groups.append(current)
    while len(groups) < shards:  # tiny models: never leave a shard name unused
        big = max(range(len(groups)), key=lambda i: len(groups[i]))
        if len(groups[big]) < 2:
            raise ValueError("more shards than tensors")
        half = len(groups[big]) // 2
        groups[big:big + 1] = [groups[big][:half], groups[big][half:]]
    return groups


def write_model_dir(path, config, state, fmt="safetensors", shards=1, tokenizer=True,
                    generation_config=None, extra_tensors=None, tied_lm_head_in_file=False):
    """Writes a model directory in the hub's layout; returns the weight file names.

    extra_tensors: {name: tensor} added to the files (e.g. rotary_emb.inv_freq buffers).
    tied_lm_head_in_file: for tied configs, also store lm_head.weight (sharing the
    embedding's storage in .bin files, as a state_dict of a tied model does).
    """
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if generation_config is None:
        generation_config = {"_from_model_config": True, "bos_token_id": config["bos_token_id"],
                             "eos_token_id": config["eos_token_id"],
                             "transformers_version": config.get("transformers_version", "4.35.2")}
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump(generation_config, f, indent=2)
    tensors = collections.OrderedDict(state)
    if tied_lm_head_in_file and "lm_head.weight" not in tensors:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    for name, t in (extra_tensors or {}).items():
        tensors[name] = t
    if tokenizer:
        for name in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(path, name))

    if fmt == "safetensors":
        single, stem, ext, index = "model.safetensors", "model", "safetensors", "model.safetensors.index.json"
    elif fmt == "bin":
        single, stem, ext, index = "pytorch_model.bin", "pytorch_model", "bin", "pytorch_model.bin.index.json"
    else:
        raise ValueError(f"unknown format {fmt!r}")

    def write_one(file_name, names):
        part = collections.OrderedDict((n, tensors[n]) for n in names)
        target = os.path.join(path, file_name)
        if fmt == "safetensors":
            # safetensors cannot alias: a shared tensor is stored as its own copy.
            write_safetensors(target, {n: t.clone() for n, t in part.items()}, {"format": "pt"})
        else:
            torch.save(part, target)

    if shards == 1:
        write_one(single, list(tensors))
        return [single]
    sizes = [(n, t.numel() * t.element_size()) for n, t in tensors.items()]
    groups = split_shards(sizes, shards)
    files, weight_map = [], {}
    for i, names in enumerate(groups):
        file_name = f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
        write_one(file_name, names)
        files.append(file_name)
        for n in names:
            weight_map[n] = file_name
    total = sum(size for _, size in sizes)
    with open(os.path.join(path, index), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return files


def weight_files(path):
    """The weight files of a directory, in the order tulu prefers them."""
    for index, single in (("model.safetensors.index.json", "model.safetensors"),
                          ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        if os.path.exists(os.path.join(path, index)):
            with open(os.path.join(path, index)) as f:
                weight_map = json.load(f)["weight_map"]
            return sorted(set(weight_map.values()))
        if os.path.exists(os.path.join(path, single)):
            return [single]
    raise FileNotFoundError(f"{path}: no weight files")


def read_model_dir(path, keep_dtype=False):
    """{name: tensor} from a model directory (fp32 unless keep_dtype)."""
    out = {}
    for file_name in weight_files(path):
        full = os.path.join(path, file_name)
        if file_name.endswith(".safetensors"):
            part = read_safetensors(full)
        else:
            part = torch.load(full, map_location="cpu")
        for name, t in part.items():
            out[name] = t if keep_dtype else t.float()
    return out
