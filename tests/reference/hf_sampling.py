"""Hugging Face's logits processors for sampling, in PyTorch, as transformers defines them
(src/transformers/generation/logits_process.py and GenerationMixin._get_logits_processor).

No transformers package exists on this machine, so the processors are written out here with
the same tensor operations, the same float32 arithmetic and the same conditions under which
generate() installs them:

    RepetitionPenaltyLogitsProcessor   if repetition_penalty != 1.0 (also in greedy mode)
        score = gather(scores, ids); score = where(score < 0, score * p, score / p);
        scatter back (each distinct id once: the scatter writes the same value again)
    TemperatureLogitsWarper            if temperature != 1.0:  scores / temperature
    TopKLogitsWarper                   if top_k != 0: remove scores < topk(scores, k)[-1]
                                       (k = min(max(top_k, 1), vocab); ties with the k-th kept)
    TopPLogitsWarper                   if top_p < 1.0: ascending sort, cumsum(softmax) <=
                                       1 - top_p removed, the largest always kept
    MinPLogitsWarper                   if min_p is not None (0 = no-op):
                                       remove softmax < min_p * max(softmax), keep the top 1
    then probs = softmax(scores) and torch.multinomial(probs) draws the token.
Greedy (do_sample=False; our temperature 0): the repetition penalty only, then argmax.

Command line, used by tests/generate/sampler_reference_test.cc:

    /usr/bin/python3 hf_sampling.py CASES.json OUT.json

CASES.json: [{"logits": [float], "history": [int], "temperature": float, "top_k": int,
              "top_p": float, "min_p": float, "repetition_penalty": float}, ...]
OUT.json:   [{"probs": [float] (the distribution the draw is made from, one per vocab id;
              empty when temperature is 0: greedy),
              "probs64": [float] (the same softmax of the same processed float32 scores,
              evaluated in float64: free of the float32 summation error of torch's softmax,
              which reaches ~3e-6 over 32000 ids),
              "argmax": int (greedy's choice: argmax after the repetition penalty)}, ...]
"""

import json
import sys

import torch


def repetition_penalty(input_ids, scores, penalty):
    """RepetitionPenaltyLogitsProcessor: input_ids [batch, seq], scores [batch, vocab]."""
    score = torch.gather(scores, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter(1, input_ids, score)


def temperature_warper(scores, temperature):
    return scores / temperature


def top_k_warper(scores, top_k, filter_value=-float("Inf"), min_tokens_to_keep=1):
    top_k = min(max(top_k, min_tokens_to_keep), scores.size(-1))
    indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
    return scores.masked_fill(indices_to_remove, filter_value)


def top_p_warper(scores, top_p, filter_value=-float("Inf"), min_tokens_to_keep=1):
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_indices_to_remove = cumulative_probs <= (1 - top_p)
    sorted_indices_to_remove[..., -min_tokens_to_keep:] = 0
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return scores.masked_fill(indices_to_remove, filter_value)


def min_p_warper(scores, min_p, filter_value=-float("Inf"), min_tokens_to_keep=1):
    probs = torch.softmax(scores, dim=-1)
    top_probs = probs.amax(dim=-1, keepdim=True)
    scaled_min_p = min_p * top_probs
    tokens_to_remove = probs < scaled_min_p
    k = min(min_tokens_to_keep, probs.shape[-1])
    sorted_indices = torch.topk(probs, k, dim=-1).indices
    tokens_to_remove.scatter_(-1, sorted_indices, False)
    return scores.masked_fill(tokens_to_remove, filter_value)


def process(logits, history, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
            repetition_penalty_value=1.0):
    """Scores after every processor generate() would install for these settings (sampling).

    logits: float32 tensor [vocab]; history: list of ids (prompt + generated so far).
    Returns float32 [vocab] scores (filtered entries -inf)."""
    scores = logits.reshape(1, -1).clone()
    if repetition_penalty_value != 1.0 and len(history) > 0:
        ids = torch.tensor([history], dtype=torch.long)
        scores = repetition_penalty(ids, scores, repetition_penalty_value)
    if temperature != 1.0:
        scores = temperature_warper(scores, temperature)
    if top_k != 0:
        scores = top_k_warper(scores, top_k)
    if top_p < 1.0:
        scores = top_p_warper(scores, top_p)
    if min_p is not None and min_p > 0.0:
        scores = min_p_warper(scores, min_p)
    return scores.reshape(-1)


def sampling_probs(logits, history, **params):
    """The distribution torch.multinomial draws from: softmax of the processed scores."""
    return torch.softmax(process(logits, history, **params), dim=-1)


def greedy_choice(logits, history, repetition_penalty_value=1.0):
    """Greedy search's token: argmax (first index on ties) after the repetition penalty."""
    scores = logits.reshape(1, -1).clone()
    if repetition_penalty_value != 1.0 and len(history) > 0:
        ids = torch.tensor([history], dtype=torch.long)
        scores = repetition_penalty(ids, scores, repetition_penalty_value)
    return int(torch.argmax(scores, dim=-1)[0])


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: hf_sampling.py CASES.json OUT.json")
    with open(argv[1]) as f:
        cases = json.load(f)
    out = []
    for case in cases:
        logits = torch.tensor(case["logits"], dtype=torch.float32)
        history = [int(i) for i in case["history"]]
        penalty = float(case["repetition_penalty"])
        temperature = float(case["temperature"])
        probs, probs64 = [], []  # temperature 0 is greedy search: no sampling distribution
        if temperature > 0:
            scores = process(logits, history, temperature=temperature,
                             top_k=int(case["top_k"]), top_p=float(case["top_p"]),
                             min_p=float(case["min_p"]), repetition_penalty_value=penalty)
            probs = torch.softmax(scores, dim=-1).tolist()
            probs64 = torch.softmax(scores.double(), dim=-1).tolist()
        out.append({"probs": [float(p) for p in probs], "probs64": [float(p) for p in probs64],
                    "argmax": greedy_choice(logits, history, penalty)})
    with open(argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv)
