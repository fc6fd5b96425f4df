"""Extra added tokens, as third-party Llama fine-tunes ship them (a <pad> at 32000, ChatML
tags, an lstrip token): tokenizer.json with them in added_tokens, and tokenizer.model with
them in tokenizer_config.json's added_tokens_decoder. Both loaders against HF tokenizers
(npm) on the extended tokenizer.json and against Python SentencePiece with the same
splitting; decode of random ids over the extended vocabulary against npm.
Then a "normalized": true token (what tokenizer.add_tokens() writes for non-special
tokens), where Hugging Face's two tokenizers differ: tokenizers matches it after
normalization against its normalized content ("▁<|tool|>"), the slow tokenizer on the raw
text. The JSON loader is checked against npm, the tokenizer.model loader against
SentencePiece with raw splitting (the slow tokenizer)."""
import json
import os
import random
import shutil
import sys

from tokenizer_cases import (LLAMA2_DIR, SOUP, corpus_texts, random_id_sequences, report_mismatches,
                             run_node_reference, run_tulu_jsonl)
from tokenizer_sp_reference import SentencePieceLegacyReference

EXTRA = [  # content, id, special, lstrip
    ("<pad>", 32000, True, False),
    ("<|im_start|>", 32001, False, False),
    ("<|im_end|>", 32002, True, False),
    ("<mask>", 32003, True, True),
]


def check_normalized_token(tulu, tmp, tokenizer, config, texts):
    entry = {"content": "<|tool|>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": True, "special": False}
    tokenizer = dict(tokenizer, added_tokens=tokenizer["added_tokens"] + [dict(entry, id=32004)])
    config = dict(config, added_tokens_decoder=dict(config["added_tokens_decoder"], **{"32004": entry}))
    json_dir, sp_dir = os.path.join(tmp, "normalized_json"), os.path.join(tmp, "normalized_sp")
    os.makedirs(json_dir)
    os.makedirs(sp_dir)
    json_path = os.path.join(json_dir, "tokenizer.json")
    json.dump(tokenizer, open(json_path, "w", encoding="utf-8"), ensure_ascii=False)
    for d in (json_dir, sp_dir):
        json.dump(config, open(os.path.join(d, "tokenizer_config.json"), "w"), ensure_ascii=False)
    shutil.copy(os.path.join(LLAMA2_DIR, "tokenizer.model"), sp_dir)
    texts = texts[:100] + ["<|tool|>", "a<|tool|>b", "a <|tool|> b", "<pad><|tool|>", "x  <|tool|><|tool|>",
                           "<s> <|tool|>", "<|tool|>\n<|tool|>", "<|tool|", "</s><|tool|>"]
    cases = [(t, True) for t in texts]
    requests = [{"text": t, "add_bos": b} for t, b in cases]
    ok = True
    node = run_node_reference(json_path, [{"encode": t, "add_special": b} for t, b in cases])
    if node is not None:
        got = run_tulu_jsonl(tulu, "tokenize", json_dir, requests)
        bad = [(repr(t[:50]), "want", w["ids"][:12], "got", g["ids"][:12])
               for (t, b), w, g in zip(cases, node, got) if w["ids"] != g["ids"]]
        ok &= report_mismatches("encode with a normalized added token [json loader] vs HF tokenizers (npm)",
                                bad, len(cases))
    sp_ref = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"),
                                          [(c, i, lstrip) for c, i, _, lstrip in EXTRA] + [("<|tool|>", 32004, False)])
    got = run_tulu_jsonl(tulu, "tokenize", sp_dir, requests)
    bad = [(repr(t[:50]), "want", sp_ref.encode(t, b)[:12], "got", g["ids"][:12])
           for (t, b), g in zip(cases, got) if g["ids"] != sp_ref.encode(t, b)]
    ok &= report_mismatches("encode with a normalized added token [sentencepiece loader] vs SentencePiece "
                            "+ raw splitting (slow tokenizer)", bad, len(cases))
    return ok


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "tokenizer_added_tokens")
    shutil.rmtree(tmp, ignore_errors=True)
    json_dir, sp_dir = os.path.join(tmp, "json"), os.path.join(tmp, "sentencepiece")
    os.makedirs(json_dir)
    os.makedirs(sp_dir)

    tokenizer = json.load(open(os.path.join(LLAMA2_DIR, "tokenizer.json"), encoding="utf-8"))
    config = json.load(open(os.path.join(LLAMA2_DIR, "tokenizer_config.json"), encoding="utf-8"))
    for content, token_id, special, lstrip in EXTRA:
        entry = {"content": content, "single_word": False, "lstrip": lstrip, "rstrip": False,
                 "normalized": False, "special": special}
        tokenizer["added_tokens"].append(dict(entry, id=token_id))
        config["added_tokens_decoder"][str(token_id)] = entry
    json_path = os.path.join(json_dir, "tokenizer.json")
    json.dump(tokenizer, open(json_path, "w", encoding="utf-8"), ensure_ascii=False)
    for d in (json_dir, sp_dir):
        json.dump(config, open(os.path.join(d, "tokenizer_config.json"), "w"), ensure_ascii=False)
    shutil.copy(os.path.join(LLAMA2_DIR, "tokenizer.model"), sp_dir)

    rng = random.Random(5)
    soup = SOUP + [c for c, _, _, _ in EXTRA] + ["<pad", "|im_start|>", "  ", " \t"]
    texts = corpus_texts()[::3] + [
        "<pad>", "a<pad>b", "<pad><pad>", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "x   <mask> y", "x\t\n <mask>", "<mask>", " <mask>", "a <pad> b", "<|im_start|><|im_start|>", "<pad",
        "<|im_end|></s><s><unk><pad>",
    ] + ["".join(rng.choice(soup) for _ in range(rng.randint(1, 40))) for _ in range(200)]
    cases = [(t, i % 2 == 0) for i, t in enumerate(texts)]
    requests = [{"text": t, "add_bos": b} for t, b in cases]
    ours = {"json": run_tulu_jsonl(tulu, "tokenize", json_dir, requests),
            "sentencepiece": run_tulu_jsonl(tulu, "tokenize", sp_dir, requests)}
    ok = True

    sp_ref = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"),
                                          [(c, i, lstrip) for c, i, _, lstrip in EXTRA])
    expected = [sp_ref.encode(t, b) for t, b in cases]
    for name, answers in ours.items():
        bad = [(repr(t[:50]), "want", w[:12], "got", g["ids"][:12]) for (t, b), w, g in zip(cases, expected, answers)
               if g["ids"] != w or g["tokens"] != sp_ref.pieces(w)]
        ok &= report_mismatches(f"encode with added tokens [{name} loader] vs SentencePiece + splitting", bad, len(cases))

    node = run_node_reference(json_path, [{"encode": t, "add_special": b} for t, b in cases])
    if node is None:
        print("SKIP: npm tokenizers not installed (tests/reference/node_modules)")
    else:
        for name, answers in ours.items():
            bad = [(repr(t[:50]), "want", w["ids"][:12], "got", g["ids"][:12])
                   for (t, b), w, g in zip(cases, node, answers) if w["ids"] != g["ids"]]
            ok &= report_mismatches(f"encode with added tokens [{name} loader] vs HF tokenizers (npm)", bad, len(cases))
        sequences = random_id_sequences(32000, 300, seed=17)
        for seq in sequences:
            for _ in range(rng.randint(0, 3)):
                seq.insert(rng.randrange(len(seq) + 1), rng.choice([32000, 32001, 32002, 32003]))
        decode_requests = [{"ids": s, "skip_special": k} for s in sequences for k in (False, True)]
        want = run_node_reference(json_path, [{"decode": r["ids"], "skip_special": r["skip_special"]}
                                              for r in decode_requests])
        for name, d in (("json", json_dir), ("sentencepiece", sp_dir)):
            got = run_tulu_jsonl(tulu, "detokenize", d, decode_requests)
            bad = [(r["ids"][:12], r["skip_special"], "want", repr(w["text"][:40]), "got", repr(g["text"][:40]))
                   for r, w, g in zip(decode_requests, want, got) if w["text"] != g["text"]]
            ok &= report_mismatches(f"decode with added tokens [{name} loader] vs HF tokenizers (npm)", bad,
                                    len(decode_requests))
    ok &= check_normalized_token(tulu, tmp, tokenizer, config, texts)
    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
