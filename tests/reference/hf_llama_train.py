"""Training-mode reference: Hugging Face LlamaForCausalLM's loss on a padded batch, with
PyTorch autograd for the gradients and torch.optim.AdamW for the updates.

transformers is not installed here, so this follows modeling_llama.py (4.35, eager attention)
as tests/reference/hf_llama.py does, but batched the way a training step runs it:

  input_ids [B, T] right-padded with pad id 0, attention_mask [B, T] (1 = real token);
  4-D additive mask = causal (finfo.min above the diagonal) + padding (finfo.min on padded
  keys), as _prepare_4d_causal_attention_mask builds it; position ids 0 .. T-1;
  labels [B, T] with -100 on masked and padded positions;
  loss = CrossEntropyLoss()(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))
         (mean over the non-ignored targets of the whole micro-batch).

Gradient accumulation as tulu's trainer defines it (open-instruct's loss / accumulation
steps): a step's gradient is the mean of its micro-batches' gradients.

Optimizer: torch.optim.AdamW with two parameter groups (weight decay on 2-D weights, none on
the 1-D RMSNorm weights), torch.nn.utils.clip_grad_norm_, and a LambdaLR multiplier.

The model computes in `dtype` (float64 by default, so that differences measure tulu's error
alone) from float32 leaf parameters; gradients arrive in float32 as a float32 model's would.
"""

import math

import torch


class TrainReference:
    def __init__(self, config, state, dtype=torch.float64):
        self.config = config
        self.dtype = dtype
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or config["hidden_size"] // self.heads
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.tied = config.get("tie_word_embeddings", False)
        theta = config.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        # Leaf parameters in float32, in the registry order of `state`.
        self.params = {}
        for name, t in state.items():
            if name == "lm_head.weight" and self.tied:
                continue
            self.params[name] = t.detach().to(torch.float32).clone().requires_grad_(True)

    def w(self, name):
        if name == "lm_head.weight" and self.tied:
            name = "model.embed_tokens.weight"
        return self.params[name].to(self.dtype)

    def rms_norm(self, h, weight):
        variance = h.pow(2).mean(-1, keepdim=True)
        return weight * (h * torch.rsqrt(variance + self.eps))

    @staticmethod
    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def logits(self, input_ids, attention_mask):
        """input_ids, attention_mask: LongTensor [B, T] → logits [B, T, V] in self.dtype."""
        batch, length = input_ids.shape
        t = torch.arange(length).float()
        freqs = torch.outer(t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        minimum = torch.finfo(self.dtype).min
        causal = torch.triu(torch.full((length, length), minimum, dtype=self.dtype), diagonal=1)
        padding = (1 - attention_mask[:, None, None, :].to(self.dtype)) * minimum
        mask = (causal[None, None] + padding).clamp(min=minimum)
        n_rep = self.heads // self.kv_heads

        h = torch.nn.functional.embedding(input_ids, self.w("model.embed_tokens.weight"))
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            residual = h
            x = self.rms_norm(h, self.w(p + "input_layernorm.weight"))
            q = torch.nn.functional.linear(x, self.w(p + "self_attn.q_proj.weight"))
            k = torch.nn.functional.linear(x, self.w(p + "self_attn.k_proj.weight"))
            v = torch.nn.functional.linear(x, self.w(p + "self_attn.v_proj.weight"))
            q = q.view(batch, length, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = k.repeat_interleave(n_rep, dim=1)
            v = v.repeat_interleave(n_rep, dim=1)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
            probs = torch.softmax(scores, dim=-1)
            out = torch.matmul(probs, v).transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
            h = residual + torch.nn.functional.linear(out, self.w(p + "self_attn.o_proj.weight"))
            residual = h
            x = self.rms_norm(h, self.w(p + "post_attention_layernorm.weight"))
            gate = torch.nn.functional.silu(torch.nn.functional.linear(x, self.w(p + "mlp.gate_proj.weight")))
            up = torch.nn.functional.linear(x, self.w(p + "mlp.up_proj.weight"))
            h = residual + torch.nn.functional.linear(gate * up, self.w(p + "mlp.down_proj.weight"))
        h = self.rms_norm(h, self.w("model.norm.weight"))
        return torch.nn.functional.linear(h, self.w("lm_head.weight"))

    @staticmethod
    def pad(rows):
        """rows: [{"input_ids", "labels"}] → input_ids, attention_mask, labels [B, T] (right pad)."""
        length = max(len(r["input_ids"]) for r in rows)
        ids = torch.zeros((len(rows), length), dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(r["labels"])
        return ids, mask, labels

    def micro_batch_loss(self, rows):
        """HF's mean token loss of one micro-batch, plus (tokens, correct argmax count)."""
        ids, mask, labels = self.pad(rows)
        logits = self.logits(ids, mask)
        shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
        shift_labels = labels[:, 1:].reshape(-1)
        loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)
        kept = shift_labels != -100
        correct = int((shift_logits.argmax(-1)[kept] == shift_labels[kept]).sum())
        return loss, int(kept.sum()), correct

    def concatenated_logps(self, pairs):
        """open-instruct's concatenated_forward + _get_batch_logps for DPO: chosen rows then rejected
        rows, each prompt + completion with -100 on the prompt, padded together into one batch;
        per row Σ log_softmax(logits)[label] over the non-ignored shifted labels. pairs: [{"prompt_ids",
        "chosen_ids", "rejected_ids"}]. Returns (chosen_logps, rejected_logps, chosen_tokens,
        rejected_tokens, chosen_mean_logit, rejected_mean_logit) — the logps with autograd, the
        mean logits over the completion positions and the vocabulary as floats."""
        rows = []
        for side in ("chosen_ids", "rejected_ids"):
            for p in pairs:
                rows.append({"input_ids": p["prompt_ids"] + p[side],
                             "labels": [-100] * len(p["prompt_ids"]) + p[side]})
        ids, mask, labels = self.pad(rows)
        logits = self.logits(ids, mask)[:, :-1, :]
        labels = labels[:, 1:]
        kept = labels != -100
        safe = labels.clone()
        safe[~kept] = 0
        per_token = torch.gather(logits.log_softmax(-1), 2, safe.unsqueeze(2)).squeeze(2)
        logps = (per_token * kept).sum(-1)
        tokens = kept.sum(-1)
        n = len(pairs)
        with torch.no_grad():
            mean_logit = [float(logits[i][kept[i]].mean()) for i in range(2 * n)]
        return (logps[:n], logps[n:], tokens[:n], tokens[n:], mean_logit[:n], mean_logit[n:])

    def step_gradients(self, micro_batches):
        """Mean over micro-batches of their loss gradients → ({name: float32 grad}, mean loss)."""
        for p in self.params.values():
            p.grad = None
        losses = []
        for rows in micro_batches:
            loss, _, _ = self.micro_batch_loss(rows)
            (loss / len(micro_batches)).backward()
            losses.append(float(loss))
        return {n: p.grad.detach().clone() for n, p in self.params.items()}, sum(losses) / len(losses)

    def make_optimizer(self, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        decay = [p for p in self.params.values() if p.dim() >= 2]
        no_decay = [p for p in self.params.values() if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}],
                                 lr=lr, betas=betas, eps=eps, foreach=False)

    def train_steps(self, steps, lr, weight_decay, clip, lr_lambda):
        """steps: list of lists of micro-batches. Returns the grad norms before clipping."""
        optimizer = self.make_optimizer(lr, weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        norms = []
        for micro_batches in steps:
            self.step_gradients(micro_batches)
            params = list(self.params.values())
            if clip > 0:
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
            else:
                norms.append(float(torch.norm(torch.stack([p.grad.norm() for p in params]))))
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        return norms
