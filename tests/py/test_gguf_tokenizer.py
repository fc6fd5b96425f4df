"""The tokenizer rebuilt from a GGUF file's tokenizer.ggml.* vocabulary tokenizes exactly as
the Llama 2 tokenizer.model does.

GGUF files: (1) written by tests/reference/gguf_reference.py from tokenizer.model (pieces,
scores, types read with the sentencepiece package; no tensors needed to tokenize), and (2)
written by `tulu quantize` from an HF directory. For every text of the corpus
(tests/data/tokenizer/corpus.jsonl) plus the generated cases (long words, random soups,
special-token strings), with and without BOS: `tulu tokenize -m FILE.gguf --jsonl` ids and
pieces must equal SentencePiece with HF legacy splitting (tests/reference/
tokenizer_sp_reference.py) — the same reference the tokenizer.model loader is tested
against; and `tulu detokenize` on the GGUF must equal it on the tokenizer.model directory.
"""

import os
import subprocess
import sys

import gguf_reference as gr
import hf_checkpoint
from tokenizer_cases import LLAMA2_DIR, corpus_texts, generated_texts, random_id_sequences, run_tulu_jsonl
from tokenizer_sp_reference import SentencePieceLegacyReference

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "gguf_tokenizer")


def main():
    os.makedirs(TMP, exist_ok=True)
    model_path = os.path.join(LLAMA2_DIR, "tokenizer.model")
    reference_file = os.path.join(TMP, "vocab_only.gguf")
    gr.write_gguf(reference_file, [("general.architecture", "string", "llama")] + gr.tokenizer_metadata(model_path),
                  [])
    config = hf_checkpoint.make_config(hidden=32, intermediate=64, layers=1, heads=2, vocab=32000)
    hf_dir = os.path.join(TMP, "hf")
    hf_checkpoint.write_model_dir(hf_dir, config, hf_checkpoint.make_state_dict(config, seed=5), tokenizer=True)
    quantized_file = os.path.join(TMP, "quantized.gguf")
    subprocess.run([TULU, "quantize", hf_dir, quantized_file, "--type", "f16"], check=True, capture_output=True)
    sp_dir = os.path.join(TMP, "sentencepiece")
    os.makedirs(sp_dir, exist_ok=True)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        with open(os.path.join(LLAMA2_DIR, name), "rb") as src, open(os.path.join(sp_dir, name), "wb") as dst:
            dst.write(src.read())

    texts = corpus_texts() + generated_texts()
    cases = [(t, True) for t in texts] + [(t, False) for i, t in enumerate(texts) if i % 3 == 0]
    requests = [{"text": t, "add_bos": b} for t, b in cases]
    sp_ref = SentencePieceLegacyReference(model_path)
    expected = [sp_ref.encode(t, b) for t, b in cases]
    decode_requests = [{"ids": ids, "skip_special": skip} for ids in random_id_sequences(32000, 200)
                       for skip in (False, True)]
    expected_text = run_tulu_jsonl(TULU, "detokenize", sp_dir, decode_requests)
    failures = 0
    for label, path in (("reference-written GGUF", reference_file), ("tulu quantize GGUF", quantized_file)):
        got = run_tulu_jsonl(TULU, "tokenize", path, requests)
        bad = [(t, b, w, g["ids"]) for (t, b), w, g in zip(cases, expected, got)
               if g["ids"] != w or g["tokens"] != sp_ref.pieces(w)]
        tokens = sum(len(w) for w in expected)
        print(f"{label}: {len(cases) - len(bad)}/{len(cases)} texts ({tokens} tokens) equal to SentencePiece "
              f"(legacy splitting)")
        for text, bos, want, ids in bad[:5]:
            print(f"  MISMATCH {text[:50]!r} bos={bos}: want {want[:12]} got {ids[:12]}")
        decoded = run_tulu_jsonl(TULU, "detokenize", path, decode_requests)
        bad_decode = sum(1 for a, b in zip(decoded, expected_text) if a["text"] != b["text"])
        print(f"{label}: detokenize {len(decode_requests) - bad_decode}/{len(decode_requests)} id sequences equal "
              f"to the tokenizer.model directory")
        failures += len(bad) + bad_decode
    if failures:
        print(f"{failures} mismatch(es)")
        sys.exit(1)
    print("GGUF tokenizer equals tokenizer.model")


if __name__ == "__main__":
    main()
