"""tests/reference/hf_llama.py with an f16 KV cache: the keys (after RoPE) and values of every
token are rounded to torch.float16 (round-to-nearest-even, `.half()`) when they enter the
cache, and attention then runs in float32 on those rounded values — llama.cpp's default
`-ctk f16 -ctv f16` semantics and what `tulu --kv-type f16` claims. Everything else is the
float32 reference unchanged (same operations, same order).

    model = LlamaReferenceKvF16.from_dir(path)   # same API as LlamaReference
"""

import math

import torch

from hf_llama import LlamaReference


class LlamaReferenceKvF16(LlamaReference):
    def attention(self, layer, h, positions, cache):
        # LlamaReference.attention with one change, marked: k, v rounded to f16 on entry.
        p = f"model.layers.{layer}.self_attn."
        length = h.shape[0]
        q = self.linear(h, self.w[p + "q_proj.weight"]).view(length, self.heads, self.head_dim).transpose(0, 1)
        k = self.linear(h, self.w[p + "k_proj.weight"]).view(length, self.kv_heads, self.head_dim).transpose(0, 1)
        v = self.linear(h, self.w[p + "v_proj.weight"]).view(length, self.kv_heads, self.head_dim).transpose(0, 1)
        cos, sin = self.cos_sin(positions)
        q, k = self.apply_rope(q, cos, sin), self.apply_rope(k, cos, sin)
        k, v = k.half().float(), v.half().float()  # the f16 cache (the only change)
        if cache[layer] is not None:
            past_k, past_v = cache[layer]
            k, v = torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)
        cache[layer] = (k, v)
        k, v = self.repeat_kv(k), self.repeat_kv(v)
        weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.head_dim)
        total = k.shape[1]
        past = total - length
        mask = torch.full((length, total), torch.finfo(weights.dtype).min)
        mask = torch.triu(mask, diagonal=past + 1)
        weights = weights + mask
        weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v).transpose(0, 1).reshape(length, self.heads * self.head_dim)
        return self.linear(out, self.w[p + "o_proj.weight"])
