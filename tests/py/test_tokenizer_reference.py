"""tulu tokenize / detokenize (both loaders: tokenizer.json and tokenizer.model) against two
independent references on the Llama 2 tokenizer:
  * encode ids vs Python SentencePiece with HF's legacy special-token splitting
    (tests/reference/tokenizer_sp_reference.py);
  * encode ids and decode text (skip_special both ways) vs Hugging Face `tokenizers` from
    npm on tokenizer.json (tests/reference/tokenizer_hf_reference.js); SKIP when absent.
Inputs: tests/data/tokenizer/corpus.jsonl + generated long words, random soups and random
id sequences (tests/reference/tokenizer_cases.py)."""
import os
import sys

from tokenizer_cases import (corpus_texts, generated_texts, make_model_dirs, random_id_sequences,
                             report_mismatches, run_node_reference, run_tulu_jsonl, LLAMA2_DIR)
from tokenizer_sp_reference import SentencePieceLegacyReference


def short(text, limit=60):
    return repr(text if len(text) <= limit else text[:limit] + "…")


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "tokenizer_reference")
    json_dir, sp_dir = make_model_dirs(tmp)
    loaders = {"json": json_dir, "sentencepiece": sp_dir}

    texts = corpus_texts() + generated_texts()
    # Every text with BOS, and every third one without, too.
    cases = [(t, True) for t in texts] + [(t, False) for i, t in enumerate(texts) if i % 3 == 0]
    requests = [{"text": t, "add_bos": b, "case": i} for i, (t, b) in enumerate(cases)]
    ours = {name: run_tulu_jsonl(tulu, "tokenize", d, requests) for name, d in loaders.items()}
    ok = True

    # (a) SentencePiece with HF legacy splitting.
    sp_ref = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"))
    expected = [sp_ref.encode(t, b) for t, b in cases]
    for name, answers in ours.items():
        bad = []
        for (text, bos), want, got in zip(cases, expected, answers):
            if got["ids"] != want or got["tokens"] != sp_ref.pieces(want):
                bad.append((short(text), bos, "want", want[:12], "got", got["ids"][:12]))
        assert all(a["case"] == i for i, a in enumerate(answers)), "the 'case' field was not copied through"
        ok &= report_mismatches(f"encode [{name} loader] vs SentencePiece (HF legacy split)", bad, len(cases))

    # (b) Hugging Face tokenizers (npm) on tokenizer.json.
    tokenizer_json = os.path.join(LLAMA2_DIR, "tokenizer.json")
    node_answers = run_node_reference(tokenizer_json,
                                      [{"encode": t, "add_special": b} for t, b in cases])
    if node_answers is None:
        print("SKIP: npm tokenizers not installed (tests/reference/node_modules); SentencePiece checks ran")
    else:
        for name, answers in ours.items():
            bad = [(short(t), b, "want", w["ids"][:12], "got", g["ids"][:12])
                   for (t, b), w, g in zip(cases, node_answers, answers) if w["ids"] != g["ids"]]
            ok &= report_mismatches(f"encode [{name} loader] vs HF tokenizers (npm)", bad, len(cases))
        # The two references agree with each other too (a check on the references).
        disagree = [short(t) for (t, b), w, e in zip(cases, node_answers, expected) if w["ids"] != e]
        print(f"references agree (SentencePiece vs HF tokenizers): {len(cases) - len(disagree)}/{len(cases)}"
              + (f"; differ on {disagree[:5]}" if disagree else ""))

        # Decode: ids from the references plus random id sequences, skip_special both ways.
        id_lists = [e for e in expected] + random_id_sequences(32000, 400)
        decode_requests = [{"ids": ids, "skip_special": skip} for ids in id_lists for skip in (False, True)]
        want = run_node_reference(tokenizer_json, [{"decode": r["ids"], "skip_special": r["skip_special"]}
                                                   for r in decode_requests])
        for name, d in loaders.items():
            got = run_tulu_jsonl(tulu, "detokenize", d, decode_requests)
            bad = [(r["ids"][:16], r["skip_special"], "want", short(w["text"]), "got", short(g["text"]))
                   for r, w, g in zip(decode_requests, want, got) if w["text"] != g["text"]]
            ok &= report_mismatches(f"decode [{name} loader] vs HF tokenizers (npm)", bad, len(decode_requests))

    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
