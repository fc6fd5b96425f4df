"""tulu sft-data (the SFT data pipeline: src/train/sft_data.h) against a transcription of
open-instruct's finetune.py encoders (tests/reference/open_instruct_encode.py) tokenizing
with two independent references: Python SentencePiece with HF's legacy special-token
splitting, and Hugging Face `tokenizers` from npm on tokenizer.json (SKIP when absent).

Rows: the fixtures in tests/data/sft (multi-turn, system turns, whitespace and Unicode
whitespace around content, empty answers, prompt-only and assistant-first rows,
special-token strings inside content, prompt/completion with and without whitespace at the
joint, text rows) plus generated conversations, at several max_seq_length values — from no
truncation down to cuts inside the prompt that drop the row — through both of tulu's
tokenizer loaders (tokenizer.json and tokenizer.model). Compared: which rows are kept, their
line numbers, input_ids and labels exactly, and the summary counts (rows read, dropped,
truncated)."""
import json
import os
import random
import re
import subprocess
import sys

from open_instruct_encode import encode_row
from tokenizer_cases import LLAMA2_DIR, SOURCE_DIR, make_model_dirs, report_mismatches, run_node_reference
from tokenizer_sp_reference import SentencePieceLegacyReference

FIXTURES = [os.path.join(SOURCE_DIR, "tests", "data", "sft", name)
            for name in ("messages.jsonl", "prompt_completion.jsonl", "text.jsonl")]
MAX_LENGTHS = [8192, 300, 64, 41, 23, 12, 6, 2, 1]
EOS_ID = 2

PIECES = ["Hello!", "What is 2+2?", "  padded  ", "\n\nnewlines\n", "", " ", "\t", "multi\nline", "tabs\tinside",
          "\u3000ideographic\u3000", "\u00a0nbsp\u00a0", "\u2009thin\u2009", "ends with </s>", "<s> bos",
          "a</s>b", "<|assistant|>\nfake", "<unk>", "你好，世界", "😀👨‍👩‍👧", "café e\u0301", "code:\n```\nx = 1\n```",
          "word " * 30, "trailing\n", "\x1f\x1c", "\r\n", "The quick brown fox jumps over the lazy dog."]


def generated_rows(count=260, seed=2024):
    rng = random.Random(seed)

    def content():
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))

    rows = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.75:
            messages = []
            if rng.random() < 0.35:
                messages.append({"role": "system", "content": content()})
            turns = rng.randint(1, 7)
            for t in range(turns):
                if rng.random() < 0.1:  # occasionally out of the usual alternation
                    role = rng.choice(["system", "user", "assistant"])
                else:
                    role = "user" if t % 2 == 0 else "assistant"
                messages.append({"role": role, "content": content()})
            rows.append({"messages": messages, "id": f"gen_{i}"})
        elif kind < 0.9:
            rows.append({"prompt": content(), "completion": content()})
        else:
            rows.append({"text": content()})
    return rows


def write_data(path, rows):
    """One row per line, with blank lines sprinkled in (line numbers must still match)."""
    lines = []
    rng = random.Random(5)
    for row in rows:
        while rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\t"]))
        lines.append(json.dumps(row, ensure_ascii=False))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return [i + 1 for i, line in enumerate(lines) if line.strip()]


def run_sft_data(tulu, model, data, max_len):
    proc = subprocess.run([tulu, "sft-data", "-m", model, "--data", data, "--max-seq-length", str(max_len)],
                          capture_output=True, timeout=600)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"tulu sft-data -m {model} --max-seq-length {max_len} failed ({proc.returncode}): {stderr}")
    examples = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    m = re.search(r"rows read: (\d+), kept: (\d+), dropped \(no target token\): (\d+), truncated: (\d+), "
                  r"bad rows skipped: (\d+)", stderr)
    assert m, f"no summary line in stderr: {stderr!r}"
    summary = dict(zip(["rows_read", "kept", "dropped", "truncated", "bad"], map(int, m.groups())))
    return examples, summary


def reference(rows, line_numbers, tokenize, max_len):
    examples, summary = [], {"rows_read": len(rows), "kept": 0, "dropped": 0, "truncated": 0, "bad": 0}
    for row, line in zip(rows, line_numbers):
        out = encode_row(row, tokenize, EOS_ID, max_len)
        summary["truncated"] += out["truncated"]
        if out["kept"]:
            summary["kept"] += 1
            examples.append({"line": line, "input_ids": out["input_ids"], "labels": out["labels"]})
        else:
            summary["dropped"] += 1
    return examples, summary


def compare(title, want, got, rows_by_line):
    """Row-by-row comparison of the kept examples; returns the mismatches."""
    bad = []
    want_by_line = {e["line"]: e for e in want}
    got_by_line = {e["line"]: e for e in got}
    for line in sorted(set(want_by_line) | set(got_by_line)):
        w, g = want_by_line.get(line), got_by_line.get(line)
        if w is None or g is None:
            bad.append((f"line {line}", "kept by " + ("tulu only" if w is None else "the reference only"),
                        json.dumps(rows_by_line[line], ensure_ascii=False)[:80]))
        elif w != g:
            first = next((i for i, (a, b) in enumerate(zip(w["input_ids"] + w["labels"], g["input_ids"] + g["labels"]))
                          if a != b), None)
            bad.append((f"line {line}", f"first difference at flat index {first}",
                        "want", w["input_ids"][:10], w["labels"][:10], "got", g["input_ids"][:10], g["labels"][:10],
                        json.dumps(rows_by_line[line], ensure_ascii=False)[:80]))
    if [e["line"] for e in got] != sorted(e["line"] for e in got):
        bad.append(("tulu's rows are not in file order",))
    return bad


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "sft_data_reference")
    json_dir, sp_dir = make_model_dirs(tmp)
    loaders = {"json": json_dir, "sentencepiece": sp_dir}

    rows = []
    for path in FIXTURES:
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    n_fixture = len(rows)
    rows += generated_rows()
    data = os.path.join(tmp, "rows.jsonl")
    line_numbers = write_data(data, rows)
    rows_by_line = dict(zip(line_numbers, rows))
    print(f"{len(rows)} rows ({n_fixture} fixtures, {len(rows) - n_fixture} generated), "
          f"max_seq_length {MAX_LENGTHS}")

    sp = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"))
    cache = {}
    requested = []

    def sp_tokenize(text):
        if text not in cache:
            cache[text] = sp.encode(text, True)
            requested.append(text)
        return cache[text]

    expected = {n: reference(rows, line_numbers, sp_tokenize, n) for n in MAX_LENGTHS}

    # The same transcription over HF tokenizers (npm): every text the first pass tokenized.
    node = run_node_reference(os.path.join(LLAMA2_DIR, "tokenizer.json"),
                              [{"encode": t, "add_special": True} for t in requested])
    expected_hf = None
    if node is None:
        print("SKIP: npm tokenizers not installed (tests/reference/node_modules); SentencePiece reference only")
    else:
        hf_ids = {t: a["ids"] for t, a in zip(requested, node)}
        differ = [t for t in requested if hf_ids[t] != cache[t]]
        print(f"references agree (SentencePiece vs HF tokenizers) on {len(requested) - len(differ)}/"
              f"{len(requested)} tokenized texts" + (f"; differ on {[t[:40] for t in differ[:5]]}" if differ else ""))
        expected_hf = {n: reference(rows, line_numbers, hf_ids.__getitem__, n) for n in MAX_LENGTHS}

    ok = True
    for name, model in loaders.items():
        for n in MAX_LENGTHS:
            got, got_summary = run_sft_data(tulu, model, data, n)
            references = [("open-instruct on SentencePiece", expected[n])]
            if expected_hf is not None:
                references.append(("open-instruct on HF tokenizers", expected_hf[n]))
            for ref_name, (want, want_summary) in references:
                bad = compare("", want, got, rows_by_line)
                if got_summary != want_summary:
                    bad.append(("summary", "want", want_summary, "got", got_summary))
                ok &= report_mismatches(f"[{name} loader, max_seq_length {n}] rows vs {ref_name} "
                                        f"(kept {want_summary['kept']}, dropped {want_summary['dropped']}, "
                                        f"truncated {want_summary['truncated']})", bad, len(rows))

    # The checks can fail: the cases must actually exercise dropping and truncation, and
    # multi-turn masking must leave several target spans somewhere.
    assert expected[8192][1]["truncated"] == 0
    assert expected[23][1]["dropped"] > expected[8192][1]["dropped"] > 0
    assert expected[41][1]["truncated"] > len(rows) // 3
    spans = max(sum(1 for i, v in enumerate(e["labels"]) if v != -100 and (i == 0 or e["labels"][i - 1] == -100))
                for e in expected[8192][0])
    assert spans >= 3, spans

    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
