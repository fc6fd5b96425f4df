"""tokenizer.json files in the form transformers writes for legacy: false Llama tokenizers
(no normalizer; a Metaspace pre-tokenizer with prepend_scheme "first", split false) and the
other Metaspace settings: tulu's JSON loader against Hugging Face tokenizers (npm) on the
corpus, generated soups and long words. SKIP when npm tokenizers is absent (nothing else
implements these files independently here)."""
import json
import os
import shutil
import sys

from tokenizer_cases import LLAMA2_DIR, corpus_texts, generated_texts, report_mismatches, run_node_reference, run_tulu_jsonl

VARIANTS = {
    "first, no split (legacy: false)": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
    "always, split": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
    "never, no split": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False},
}


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "tokenizer_metaspace")
    shutil.rmtree(tmp, ignore_errors=True)
    base = json.load(open(os.path.join(LLAMA2_DIR, "tokenizer.json"), encoding="utf-8"))
    texts = corpus_texts() + generated_texts(seed=77)[:60]
    cases = [(t, i % 2 == 0) for i, t in enumerate(texts)]
    ok = True
    for name, pre_tokenizer in VARIANTS.items():
        d = os.path.join(tmp, name.split(",")[0])
        os.makedirs(d)
        variant = dict(base, normalizer=None, pre_tokenizer=pre_tokenizer)
        path = os.path.join(d, "tokenizer.json")
        json.dump(variant, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        want = run_node_reference(path, [{"encode": t, "add_special": b} for t, b in cases])
        if want is None:
            print("SKIP: npm tokenizers not installed (tests/reference/node_modules)")
            return
        got = run_tulu_jsonl(tulu, "tokenize", d, [{"text": t, "add_bos": b} for t, b in cases])
        bad = [(repr(t[:50]), "want", w["ids"][:12], "got", g["ids"][:12])
               for (t, b), w, g in zip(cases, want, got) if w["ids"] != g["ids"]]
        ok &= report_mismatches(f"encode, Metaspace {name}, vs HF tokenizers (npm)", bad, len(cases))
    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
