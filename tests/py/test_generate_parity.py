"""Greedy generation parity: `tulu generate --output-json` against the greedy decoding of
tests/reference/hf_llama.py (PyTorch, Hugging Face LlamaForCausalLM semantics: prompt as one
batch, then one token at a time through its KV cache, argmax with ties to the lowest id) on
random checkpoints written by tests/reference/hf_checkpoint.py.

Cases: MHA and GQA, F32 / BF16, safetensors (single, sharded) and PyTorch .bin, tied
embeddings, plain prompts, a --chat prompt (Tulu format, with a system turn) and a prompt
longer than one forward batch (128 tokens). Each generates 32 tokens; the ids must be equal
token for token, and the prompt ids are the tokenizer's (checked against SentencePiece).

EOS: random models rarely emit EOS, so two cases force it:
  * lm_head row 2 (</s>) set to 1.05 × the row of a token the unmodified model picks greedily,
    so that </s> outscores it where that token would win: generation must stop exactly where
    the reference emits </s>, with finish_reason "eos" and </s> not among the ids;
  * generation_config.json lists eos_token_id [2, X] (config.json only 2) for a token X of the
    greedy run: it must stop at X's first occurrence (generation_config overrides config.json).

A divergence is reported with the reference's top-2 logit gap at that step; the forward pass
agrees with PyTorch within 1e-4 (tests/py/test_forward_parity.py), so a gap below 2e-4 is a
genuine near-tie where either token is correct: such a case passes on the matched prefix and
says so. Any other divergence fails.
"""

import json
import os
import subprocess
import sys
import tempfile

import sentencepiece
import torch

import hf_checkpoint
from hf_llama import LlamaReference

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "generate_parity")
NEW_TOKENS = 32
NEAR_TIE = 2e-4  # 2 × the forward parity bound on |Δlogit|

LONG_PROMPT = ("In the beginning the universe was created. This has made a lot of people very "
               "angry and been widely regarded as a bad move. ") * 5

# name, make_config kwargs, dtype, format, shards, generate args
CASES = [
    ("mha_f32", dict(hidden=64, intermediate=172, layers=2, heads=4, vocab=32000),
     "float32", "safetensors", 1, ["-p", "The capital of France is"]),
    ("gqa_bf16_sharded", dict(hidden=96, intermediate=256, layers=3, heads=6, kv_heads=2, vocab=32000),
     "bfloat16", "safetensors", 2, ["-p", "Write a poem about the sea.", "--chat", "--system",
                                    "You are a helpful assistant."]),
    ("gqa_f32_tied_bin", dict(hidden=64, intermediate=160, layers=2, heads=4, kv_heads=1, vocab=32000,
                              tie=True),
     "float32", "bin", 1, ["-p", "def fibonacci(n):\n    "]),
    ("mha_f16_long_prompt", dict(hidden=64, intermediate=172, layers=2, heads=4, vocab=32000, eps=1e-5),
     "float16", "safetensors", 1, ["-p", LONG_PROMPT]),
]


def run_generate(model_dir, args):
    cmd = [TULU, "generate", "-m", model_dir, "-n", str(NEW_TOKENS), "-t", "2", "--output-json"] + args
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"tulu generate failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def top2_gap(reference, ids):
    logits, _ = reference.forward(ids)
    top = torch.topk(logits[-1], 2).values
    return float(top[0] - top[1])


def compare(name, reference, out, eos_ids, failures, expect_eos=False):
    prompt_ids = out["prompt_ids"]
    expected = reference.greedy(prompt_ids, NEW_TOKENS, eos_ids=tuple(eos_ids))
    expected_finish = "length"
    if expected and expected[-1] in eos_ids:
        expected, expected_finish = expected[:-1], "eos"
    got = out["ids"]
    min_gap = min(top2_gap(reference, prompt_ids + expected[:i]) for i in range(len(expected) + 1)
                  if i < NEW_TOKENS)
    if got == expected and out["finish_reason"] == expected_finish:
        print(f"  {name}: prompt {len(prompt_ids)} tokens, {len(got)} generated ids equal "
              f"({expected_finish}; smallest top-2 gap on the way {min_gap:.2e})  ok")
        if expect_eos and expected_finish != "eos":
            failures.append(f"{name}: the reference did not emit EOS; the case tests nothing")
        return True
    step = next((i for i in range(min(len(got), len(expected))) if got[i] != expected[i]),
                min(len(got), len(expected)))
    gap = top2_gap(reference, prompt_ids + expected[:step])
    if step < len(got) and step < len(expected) and gap < NEAR_TIE:
        print(f"  {name}: diverged at step {step} at a near-tie (top-2 gap {gap:.2e} < {NEAR_TIE}); "
              f"{step} ids equal before it  ok")
        return True
    failures.append(f"{name}: differs at step {step} (top-2 gap there {gap:.2e}): tulu {got[:step + 3]}... "
                    f"finish {out['finish_reason']}, reference {expected[:step + 3]}... finish {expected_finish}")
    print("  FAIL: " + failures[-1])
    return False


def main():
    os.makedirs(TMP, exist_ok=True)
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(hf_checkpoint.TOKENIZER_DIR, "tokenizer.model"))
    failures, matched = [], 0
    for index, (name, kwargs, dtype, fmt, shards, args) in enumerate(CASES):
        config = hf_checkpoint.make_config(dtype=dtype, **kwargs)
        state = hf_checkpoint.make_state_dict(config, seed=300 + index)
        model_dir = os.path.join(TMP, name)
        hf_checkpoint.write_model_dir(model_dir, config, state, fmt=fmt, shards=shards)
        reference = LlamaReference.from_dir(model_dir)
        print(f"{name}: {fmt} x{shards} {dtype}, heads {config['num_attention_heads']}/"
              f"{config['num_key_value_heads']}, tied {config['tie_word_embeddings']}, "
              f"args {' '.join(args)[:60]!r}")
        out = run_generate(model_dir, args)
        if "--chat" not in args:  # plain prompts: the ids are SentencePiece's, after BOS
            expected_prompt = [1] + sp.encode(args[1])
            if out["prompt_ids"] != expected_prompt:
                failures.append(f"{name}: prompt ids {out['prompt_ids'][:8]}... != SentencePiece "
                                f"{expected_prompt[:8]}...")
        matched += compare(name, reference, out, [2], failures)

    # EOS forced through lm_head: </s> scores 1.05 × a token that greedy picks at step 10.
    config = hf_checkpoint.make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=32000)
    state = hf_checkpoint.make_state_dict(config, seed=400)
    base_dir = os.path.join(TMP, "eos_base")
    hf_checkpoint.write_model_dir(base_dir, config, state)
    prompt = ["-p", "Once upon a time"]
    base = run_generate(base_dir, prompt)
    base_reference = LlamaReference.from_dir(base_dir)
    matched += compare("eos_base (unmodified)", base_reference, base, [2], failures)
    target = base["ids"][10]
    forced = dict(state)
    forced["lm_head.weight"] = state["lm_head.weight"].clone()
    forced["lm_head.weight"][2] = 1.05 * state["lm_head.weight"][target]
    forced_dir = os.path.join(TMP, "eos_forced")
    hf_checkpoint.write_model_dir(forced_dir, config, forced)
    print(f"eos_forced: lm_head[2] = 1.05 x lm_head[{target}]")
    matched += compare("eos_forced", LlamaReference.from_dir(forced_dir), run_generate(forced_dir, prompt),
                       [2], failures, expect_eos=True)

    # generation_config.json's eos_token_id list overrides config.json's.
    stop_token = next(t for t in base["ids"][6:] if t != 2)
    override_dir = os.path.join(TMP, "eos_generation_config")
    hf_checkpoint.write_model_dir(override_dir, config, state,
                                  generation_config={"bos_token_id": 1, "eos_token_id": [2, stop_token]})
    print(f"eos_generation_config: generation_config.json eos_token_id [2, {stop_token}], config.json 2")
    matched += compare("eos_generation_config", base_reference, run_generate(override_dir, prompt),
                       [2, stop_token], failures, expect_eos=True)

    print(f"\ngreedy generation: {matched} of {len(CASES) + 3} generations matched the PyTorch reference")
    if failures:
        print(f"{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        sys.exit(1)


if __name__ == "__main__":
    main()
