"""A pure-PyTorch implementation of Hugging Face's LlamaForCausalLM forward semantics.

transformers is not installed here, so this module follows modeling_llama.py (transformers
4.35, eager attention) step by step, with the same tensor operations in the same order:

  embed_tokens → for each layer:
      residual = h; h = input_layernorm(h)
      q, k, v = q_proj(h), k_proj(h), v_proj(h)        reshaped to [heads, T, head_dim]
      q, k = q·cos + rotate_half(q)·sin (cos/sin at the tokens' positions)
      k, v appended to the cache (after RoPE, before repeat_kv)
      k, v = repeat_kv(k, v)                             GQA: kv head j serves heads j·n_rep …
      weights = q·kᵀ / sqrt(head_dim) + causal mask (finfo.min above the diagonal)
      weights = softmax(weights, dim=-1, dtype=float32); out = weights·v → o_proj
      h = residual + out
      residual = h; h = post_attention_layernorm(h); h = down(silu(gate(h)) · up(h)); h = residual + h
  → norm → lm_head (or the embedding matrix when tie_word_embeddings) → logits.float()

  RMSNorm: x = h.to(float32); variance = x.pow(2).mean(-1, keepdim=True);
           x = x · rsqrt(variance + eps); return weight · x.to(input dtype)
  RoPE:    inv_freq = 1 / (theta ** (arange(0, dim, 2).float() / dim)) in float32;
           t = arange(positions).float() (linear rope_scaling: t = t / factor);
           freqs = outer(t, inv_freq); emb = cat(freqs, freqs); cos, sin = emb.cos(), emb.sin()

Weights are converted to float32 before compute: tulu computes in fp32 whatever the stored
dtype, so BF16/F16 checkpoints mean "stored in that format, computed in fp32" on both sides.

API:
    model = LlamaReference(config_dict, state_dict)          # or LlamaReference.from_dir(path)
    logits, cache = model.forward(ids, cache=None, trace=None)  # logits float32 [len(ids), vocab]
        trace(name, tensor) receives the intermediates tulu's Session traces, with the same
        names: "embed", "layers.<l>.attention_residual", "layers.<l>.output", "norm".
    cache = model.new_cache()                                 # empty KV cache
    ids = model.greedy(prompt_ids, max_new_tokens, eos_ids=())  # greedy generation with the cache
"""

import math

import torch

import hf_checkpoint


class LlamaReference:
    def __init__(self, config, state):
        self.config = config
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or self.hidden // self.heads
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.theta = config.get("rope_theta", 10000.0)
        scaling = config.get("rope_scaling")
        self.linear_factor = None
        if scaling is not None:
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind == "linear":
                self.linear_factor = scaling["factor"]
            elif kind != "default":
                raise ValueError(f"rope_scaling type {kind!r} is not implemented in the reference")
        self.w = {name: t.to(torch.float32) for name, t in state.items()}
        if config.get("tie_word_embeddings", False) or "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        dim = self.head_dim
        self.inv_freq = 1.0 / (self.theta ** (torch.arange(0, dim, 2).float() / dim))

    @classmethod
    def from_dir(cls, path):
        import json
        import os
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        return cls(config, hf_checkpoint.read_model_dir(path))

    # -- the pieces, as in modeling_llama.py ------------------------------------------------

    def rms_norm(self, hidden, weight):
        input_dtype = hidden.dtype
        hidden = hidden.to(torch.float32)
        variance = hidden.pow(2).mean(-1, keepdim=True)
        hidden = hidden * torch.rsqrt(variance + self.eps)
        return weight * hidden.to(input_dtype)

    def cos_sin(self, positions):
        t = positions.to(self.inv_freq.dtype)
        if self.linear_factor is not None:
            t = t / self.linear_factor
        freqs = torch.outer(t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def apply_rope(self, x, cos, sin):
        # x [heads, T, head_dim]; cos/sin [T, head_dim] broadcast over heads.
        return (x * cos) + (self.rotate_half(x) * sin)

    def repeat_kv(self, x):
        n_rep = self.heads // self.kv_heads
        if n_rep == 1:
            return x
        kv, length, dim = x.shape
        return x[:, None, :, :].expand(kv, n_rep, length, dim).reshape(kv * n_rep, length, dim)

    @staticmethod
    def linear(x, weight):
        return torch.nn.functional.linear(x, weight)

    def attention(self, layer, h, positions, cache):
        p = f"model.layers.{layer}.self_attn."
        length = h.shape[0]
        q = self.linear(h, self.w[p + "q_proj.weight"]).view(length, self.heads, self.head_dim).transpose(0, 1)
        k = self.linear(h, self.w[p + "k_proj.weight"]).view(length, self.kv_heads, self.head_dim).transpose(0, 1)
        v = self.linear(h, self.w[p + "v_proj.weight"]).view(length, self.kv_heads, self.head_dim).transpose(0, 1)
        cos, sin = self.cos_sin(positions)
        q, k = self.apply_rope(q, cos, sin), self.apply_rope(k, cos, sin)
        if cache[layer] is not None:
            past_k, past_v = cache[layer]
            k, v = torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)
        cache[layer] = (k, v)
        k, v = self.repeat_kv(k), self.repeat_kv(v)
        weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.head_dim)
        total = k.shape[1]
        past = total - length
        # Causal mask: query i (position past + i) sees keys 0 ..= past + i.
        mask = torch.full((length, total), torch.finfo(weights.dtype).min)
        mask = torch.triu(mask, diagonal=past + 1)
        weights = weights + mask
        weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v).transpose(0, 1).reshape(length, self.heads * self.head_dim)
        return self.linear(out, self.w[p + "o_proj.weight"])

    def mlp(self, layer, h):
        p = f"model.layers.{layer}.mlp."
        gate = torch.nn.functional.silu(self.linear(h, self.w[p + "gate_proj.weight"]))
        return self.linear(gate * self.linear(h, self.w[p + "up_proj.weight"]), self.w[p + "down_proj.weight"])

    # -- the model ----------------------------------------------------------------------------

    def new_cache(self):
        return [None] * self.layers

    def forward(self, ids, cache=None, trace=None):
        """Logits float32 [len(ids), vocab] for ids at positions past .. past + len - 1."""
        if cache is None:
            cache = self.new_cache()
        past = 0 if cache[0] is None else cache[0][0].shape[1]
        ids = torch.as_tensor(ids, dtype=torch.long)
        positions = torch.arange(past, past + ids.shape[0])
        trace = trace or (lambda name, tensor: None)
        with torch.no_grad():
            h = torch.nn.functional.embedding(ids, self.w["model.embed_tokens.weight"])
            trace("embed", h)
            for layer in range(self.layers):
                p = f"model.layers.{layer}."
                residual = h
                h = self.rms_norm(h, self.w[p + "input_layernorm.weight"])
                h = residual + self.attention(layer, h, positions, cache)
                trace(f"layers.{layer}.attention_residual", h)
                residual = h
                h = self.rms_norm(h, self.w[p + "post_attention_layernorm.weight"])
                h = residual + self.mlp(layer, h)
                trace(f"layers.{layer}.output", h)
            h = self.rms_norm(h, self.w["model.norm.weight"])
            trace("norm", h)
            logits = self.linear(h, self.w["lm_head.weight"]).float()
        return logits, cache

    def greedy(self, prompt_ids, max_new_tokens, eos_ids=()):
        """Greedy decoding (argmax; ties to the lowest id, as torch.argmax): prompt as one batch,
        then one token at a time through the cache. Returns the new ids (stops after EOS)."""
        logits, cache = self.forward(prompt_ids)
        out = []
        for _ in range(max_new_tokens):
            next_id = int(torch.argmax(logits[-1]))
            out.append(next_id)
            if next_id in eos_ids:
                break
            logits, cache = self.forward([next_id], cache)
        return out
