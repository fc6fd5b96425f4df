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
Chat format: `tulu render-chat -m FILE.gguf` picks the format of tokenizer.chat_template
(each template of tests/reference/chat_reference.py) and renders the same ids as the HF
directory holding that template in tokenizer_config.json.
"""

import json
import os
import shutil
import subprocess
import sys

import gguf_reference as gr
import hf_checkpoint
from chat_reference import TEMPLATES
from tokenizer_cases import LLAMA2_DIR, corpus_texts, generated_texts, random_id_sequences, run_tulu_jsonl
from tokenizer_sp_reference import SentencePieceLegacyReference

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "gguf_tokenizer")


def render(model, conversation):
    line = json.dumps({"messages": conversation, "add_generation_prompt": True}) + "\n"
    r = subprocess.run([TULU, "render-chat", "-m", model, "--jsonl"], input=line, capture_output=True, text=True)
    assert r.returncode == 0, f"render-chat -m {model}: {r.stderr}"
    return json.loads(r.stdout)


def check_chat_formats(model_path):
    failures = 0
    conversation = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
                    {"role": "user", "content": "Bye"}]
    for name, template in TEMPLATES.items():
        path = os.path.join(TMP, f"chat_{name}.gguf")
        gr.write_gguf(path, [("general.architecture", "string", "llama")] +
                      gr.tokenizer_metadata(model_path, chat_template=template), [])
        hf_dir = os.path.join(TMP, f"chat_{name}_hf")
        os.makedirs(hf_dir, exist_ok=True)
        shutil.copy(model_path, os.path.join(hf_dir, "tokenizer.model"))
        with open(os.path.join(LLAMA2_DIR, "tokenizer_config.json")) as f:
            tc = json.load(f)
        tc["chat_template"] = template
        with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f)
        got, want = render(path, conversation), render(hf_dir, conversation)
        ok = got["chat_format"] == name and got["ids"] == want["ids"]
        print(f"chat template {name}: GGUF renders as {got['chat_format']}, {len(got['ids'])} ids "
              f"{'equal to' if got['ids'] == want['ids'] else 'DIFFERENT from'} the HF directory")
        failures += 0 if ok else 1
    return failures


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
    failures += check_chat_formats(model_path)
    if failures:
        print(f"{failures} mismatch(es)")
        sys.exit(1)
    print("GGUF tokenizer equals tokenizer.model")


if __name__ == "__main__":
    main()
