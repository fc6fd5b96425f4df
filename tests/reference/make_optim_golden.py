"""Golden values for tulu's optimizer tests (tests/train/optimizer_test.cc, lr_schedule_test.cc),
computed by PyTorch itself:

  * AdamW runs: torch.optim.AdamW (foreach=False: the single-tensor path) over the parameters
    of a tiny Llama config (the registry order and shapes of llama_param_specs), two param
    groups as tulu splits them (matrices decayed, 1-D norm weights not), the learning rate
    from torch.optim.lr_scheduler.LambdaLR with transformers' schedule lambdas, and
    torch.nn.utils.clip_grad_norm_ before each step when clipping is on. Stored: the inputs
    (initial parameters, the gradient of every step), and after every step the parameters,
    the lr used and the gradient norm; after the last step the AdamW moments.
  * Schedules: LambdaLR's lr at every step for each kind and several (total, warm-up) pairs.
  * Step arithmetic of open-instruct's finetune.py (steps per epoch, total, warm-up).
  * clip_grad_norm_ alone: the norm and the clipped gradient.

The schedule lambdas are transcribed from transformers' optimization.py
(get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup with num_cycles=0.5,
get_constant_schedule_with_warmup): transformers is not installed here.

Floats are written with 9 significant digits, which round-trips every float32 value exactly.

Regenerate (after changing the cases here; the committed file must equal this output, which
tests/py/test_optimizer_reference.py checks):

    /usr/bin/python3 tests/reference/make_optim_golden.py tests/data/optim/golden.json
"""

import json
import math
import sys
import warnings

import numpy as np
import torch

# A tiny Llama: hidden 4, intermediate 6, 1 layer, 2 heads of dim 2, 1 KV head, vocab 5.
CONFIG = {"hidden_size": 4, "intermediate_size": 6, "num_hidden_layers": 1,
          "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 5,
          "tie_word_embeddings": False}


def param_specs(c):
    """llama_param_specs (src/llama/model.cc): transformers' parameter order."""
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = h // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    specs = [("model.embed_tokens.weight", [v, h])]
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        specs += [(p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.k_proj.weight", [kv, h]),
                  (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, q]),
                  (p + "mlp.gate_proj.weight", [i, h]), (p + "mlp.up_proj.weight", [i, h]),
                  (p + "mlp.down_proj.weight", [h, i]), (p + "input_layernorm.weight", [h]),
                  (p + "post_attention_layernorm.weight", [h])]
    specs.append(("model.norm.weight", [h]))
    if not c["tie_word_embeddings"]:
        specs.append(("lm_head.weight", [v, h]))
    return specs


# transformers' lr lambdas (optimization.py), transcribed.
def linear_lambda(warmup, total):
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    return f


def cosine_lambda(warmup, total, num_cycles=0.5):
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))
    return f


def constant_lambda(warmup, total):
    del total
    def f(step):
        if step < warmup:
            return float(step) / float(max(1.0, warmup))
        return 1.0
    return f


LAMBDAS = {"linear": linear_lambda, "cosine": cosine_lambda, "constant": constant_lambda}


def f32_list(a):
    return [float("%.9g" % x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def inputs(n, steps, grad_scales):
    """Initial parameters and per-step gradients: smooth formulas with exact zeros, tiny
    gradients (the second moment far below eps²) and large ones."""
    i = np.arange(n, dtype=np.float64)
    params = np.sin(i * 0.37) * 0.8 + 0.05 * np.cos(i * 1.3)
    params[::23] = 0.0
    grads = []
    for s in range(1, steps + 1):
        g = np.cos(i * 0.11 + 0.7 * s) * grad_scales[s - 1]
        g[(np.arange(n) % 7) == 3] *= 1e-5
        g[(np.arange(n) % 11) == 0] = 0.0
        grads.append(g.astype(np.float32))
    return params.astype(np.float32), grads


def adamw_case(name, schedule, total, warmup, base_lr, betas, eps, weight_decay, max_norm,
               grad_scales):
    specs = param_specs(CONFIG)
    n = sum(int(np.prod(shape)) for _, shape in specs)
    steps = len(grad_scales)
    params0, grads = inputs(n, steps, grad_scales)
    # Parameters from the flat buffer, in registry order.
    tensors, offset = [], 0
    for _, shape in specs:
        k = int(np.prod(shape))
        tensors.append(torch.nn.Parameter(torch.tensor(params0[offset:offset + k]).reshape(shape)))
        offset += k
    decay = [t for t in tensors if t.dim() > 1]
    no_decay = [t for t in tensors if t.dim() <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=base_lr, betas=betas, eps=eps, foreach=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LAMBDAS[schedule](warmup, total))
    out_steps = []
    for s in range(steps):
        offset = 0
        for t in tensors:
            k = t.numel()
            t.grad = torch.tensor(grads[s][offset:offset + k]).reshape(t.shape)
            offset += k
        lr = optimizer.param_groups[0]["lr"]
        norm = None
        if max_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        else:
            norm = float(torch.norm(torch.stack([torch.norm(t.grad) for t in tensors])))
        optimizer.step()
        scheduler.step()
        flat = torch.cat([t.detach().reshape(-1) for t in tensors]).numpy()
        out_steps.append({"lr": lr, "grad_norm": norm, "params": f32_list(flat)})
    state = [optimizer.state[t] for t in tensors]
    exp_avg = torch.cat([st["exp_avg"].reshape(-1) for st in state]).numpy()
    exp_avg_sq = torch.cat([st["exp_avg_sq"].reshape(-1) for st in state]).numpy()
    return {
        "name": name, "schedule": schedule, "total_steps": total, "warmup_steps": warmup,
        "base_lr": base_lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
        "weight_decay": weight_decay, "max_norm": max_norm,
        "params0": f32_list(params0), "grads": [f32_list(g) for g in grads],
        "steps": out_steps, "exp_avg": f32_list(exp_avg), "exp_avg_sq": f32_list(exp_avg_sq),
    }


def schedule_case(kind, total, warmup, base_lr):
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LAMBDAS[kind](warmup, total))
    lrs = []
    for _ in range(total + 3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return {"kind": kind, "total_steps": total, "warmup_steps": warmup, "base_lr": base_lr, "lrs": lrs}


def steps_case(micro_batches, grad_accum, epochs, warmup_ratio):
    # open-instruct finetune.py
    per_epoch = math.ceil(micro_batches / grad_accum)
    total = epochs * per_epoch
    return {"micro_batches": micro_batches, "grad_accum": grad_accum, "epochs": epochs,
            "warmup_ratio": warmup_ratio, "steps_per_epoch": per_epoch, "total_steps": total,
            "warmup_steps": int(total * warmup_ratio)}


def clip_case(n, scale, max_norm):
    i = np.arange(n, dtype=np.float64)
    g = (np.sin(i * 0.91) * scale).astype(np.float32)
    t = torch.nn.Parameter(torch.zeros(n))
    t.grad = torch.tensor(g)
    norm = float(torch.nn.utils.clip_grad_norm_([t], max_norm))
    return {"max_norm": max_norm, "grads": f32_list(g), "norm": norm,
            "clipped": f32_list(t.grad.numpy())}


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    golden = {
        "generator": "tests/reference/make_optim_golden.py",
        "torch_version": torch.__version__.split("+")[0],
        "config": CONFIG,
        "params": [{"name": name, "shape": shape} for name, shape in param_specs(CONFIG)],
        "adamw": [
            adamw_case("linear_decay_clip", "linear", 5, 1, 1e-2, (0.9, 0.999), 1e-8, 0.1, 1.0,
                       [0.3, 2.0, 0.05, 5.0, 1.0]),
            adamw_case("cosine_no_decay_no_clip", "cosine", 8, 2, 3e-3, (0.9, 0.95), 1e-6, 0.0, 0.0,
                       [1.0, 0.5, 3.0, 0.01, 2.0, 0.7]),
            adamw_case("constant_big_decay_clip", "constant", 5, 0, 5e-2, (0.8, 0.99), 1e-8, 0.5, 0.5,
                       [0.1, 1.0, 0.2, 4.0, 0.3]),
        ],
        "schedules": [schedule_case(kind, total, warmup, 2e-5)
                      for kind in ("linear", "cosine", "constant")
                      for total, warmup in ((10, 3), (7, 0), (1, 0), (5, 5), (4, 1), (100, 3), (3, 6))],
        "steps": [steps_case(*c) for c in ((326154, 128, 2, 0.03), (10, 3, 1, 0.03), (9, 3, 3, 0.1),
                                          (1, 1, 1, 0.0), (0, 4, 2, 0.5), (1000, 7, 3, 0.33),
                                          (100, 1, 3, 1.0))],
        "clip": [clip_case(37, 1.0, 1.0), clip_case(37, 0.01, 1.0), clip_case(100, 3.0, 0.25)],
    }
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/optim/golden.json"
    with open(path, "w") as f:
        json.dump(golden, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
