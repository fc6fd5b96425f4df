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
import sys

from data_test_harness import check_against_references, expected_by_reference, reference_rows, run_data_command, \
    write_data
from open_instruct_encode import encode_row
from tokenizer_cases import SOURCE_DIR

FIXTURES = [os.path.join(SOURCE_DIR, "tests", "data", "sft", name)
            for name in ("messages.jsonl", "prompt_completion.jsonl", "text.jsonl")]
MAX_LENGTHS = [8192, 300, 64, 41, 23, 12, 6, 2, 1]
EOS_ID = 2
FIELDS = ("input_ids", "labels")

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


def run_sft_data(tulu, model, data, max_len):
    return run_data_command([tulu, "sft-data", "-m", model, "--data", data, "--max-seq-length", str(max_len)],
                            "no target token")


def reference(rows, line_numbers, tokenize, max_len):
    return reference_rows(rows, line_numbers, lambda row: encode_row(row, tokenize, EOS_ID, max_len),
                          FIELDS)


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "sft_data_reference")
    os.makedirs(tmp, exist_ok=True)

    rows = []
    for path in FIXTURES:
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    n_fixture = len(rows)
    rows += generated_rows()
    data = os.path.join(tmp, "rows.jsonl")
    line_numbers = write_data(data, rows, seed=5)
    rows_by_line = dict(zip(line_numbers, rows))
    print(f"{len(rows)} rows ({n_fixture} fixtures, {len(rows) - n_fixture} generated), "
          f"max_seq_length {MAX_LENGTHS}")

    # open-instruct's encoders on SentencePiece, then on HF tokenizers (npm).
    references = expected_by_reference(MAX_LENGTHS, lambda tokenize, n: reference(rows, line_numbers, tokenize, n))
    ok = check_against_references(tmp, MAX_LENGTHS, lambda model, n: run_sft_data(tulu, model, data, n),
                                  references, rows_by_line, FIELDS, lambda n: f"max_seq_length {n}")

    # The checks can fail: the cases must actually exercise dropping and truncation, and
    # multi-turn masking must leave several target spans somewhere.
    expected = references[0][1]
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
