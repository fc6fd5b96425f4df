"""tulu dpo-data (DPO preference data: src/train/preference_data.h) against an independent
transcription (tests/reference/open_instruct_dpo_encode.py: open-instruct's Tulu rendering,
TRL's prompt/answer split and keep_end truncation) tokenizing with two references: Python
SentencePiece with HF's legacy special-token splitting, and Hugging Face `tokenizers` from
npm on tokenizer.json (SKIP when absent).

Rows: the fixtures in tests/data/dpo plus generated pairs — ultrafeedback_binarized
conversations with system turns, multi-turn prompts (earlier assistant turns), replies only
(the "prompt" field used), plain {"prompt", "chosen", "rejected"} strings, Unicode,
whitespace, special-token strings, identical and empty answers — at several (max_length,
max_prompt_length) settings from no truncation down to cuts that drop pairs, through both of
tulu's tokenizer loaders. Compared: which pairs are kept, their line numbers, the three id
lists exactly, and the summary counts (rows read, kept, dropped, truncated)."""
import json
import os
import random
import sys

from data_test_harness import check_against_references, expected_by_reference, reference_rows, run_data_command, \
    write_data
from open_instruct_dpo_encode import encode_pair
from tokenizer_cases import SOURCE_DIR

FIXTURE = os.path.join(SOURCE_DIR, "tests", "data", "dpo", "preferences.jsonl")
# (max_length, max_prompt_length or None)
FIELDS = ("prompt_ids", "chosen_ids", "rejected_ids")
SETTINGS = [(8192, None), (300, None), (64, None), (64, 24), (41, 16), (30, 1), (23, 8), (12, 4), (6, 2)]  # (1, x) drops all: test_dpo_data_errors.py

PIECES = ["Hello!", "What is 2+2?", "  padded  ", "\n\nnewlines\n", "", " ", "\t", "multi\nline", "tabs\tinside",
          "\u3000ideographic\u3000", "\u00a0nbsp\u00a0", "ends with </s>", "<s> bos", "a</s>b",
          "<|assistant|>\nfake", "<|user|>", "<unk>", "你好，世界", "😀👨‍👩‍👧", "café e\u0301", "code:\n```\nx = 1\n```",
          "word " * 20, "trailing\n", "\r\n", "The quick brown fox jumps over the lazy dog.", "4", "Katze"]


def generated_rows(count=240, seed=2025):
    rng = random.Random(seed)

    def content():
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))

    rows = []
    for i in range(count):
        chosen, rejected = content(), content()
        if rng.random() < 0.08:
            rejected = chosen
        kind = rng.random()
        if kind < 0.7:
            prompt = []
            if rng.random() < 0.3:
                prompt.append({"role": "system", "content": content()})
            for t in range(rng.choice([1, 1, 1, 3, 5])):
                prompt.append({"role": "user" if t % 2 == 0 else "assistant", "content": content()})
            text = prompt[-1]["content"]
            rows.append({"prompt": text, "prompt_id": f"id{i}",
                         "chosen": prompt + [{"role": "assistant", "content": chosen}],
                         "rejected": prompt + [{"role": "assistant", "content": rejected}],
                         "messages": prompt + [{"role": "assistant", "content": chosen}],
                         "score_chosen": rng.random() * 10, "score_rejected": rng.random() * 10})
        elif kind < 0.8:
            rows.append({"prompt": content(), "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}]})
        else:
            rows.append({"prompt": content(), "chosen": chosen, "rejected": rejected})
    return rows


def run_dpo_data(tulu, model, data, max_length, max_prompt_length):
    args = [tulu, "dpo-data", "-m", model, "--data", data, "--max-length", str(max_length)]
    if max_prompt_length is not None:
        args += ["--max-prompt-length", str(max_prompt_length)]
    return run_data_command(args, "empty completion")


def reference(rows, line_numbers, tokenize, max_length, max_prompt_length):
    return reference_rows(rows, line_numbers, lambda row: encode_pair(row, tokenize, max_length, max_prompt_length),
                          FIELDS)


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "dpo_data_reference")
    os.makedirs(tmp, exist_ok=True)

    with open(FIXTURE, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    n_fixture = len(rows)
    rows += generated_rows()
    data = os.path.join(tmp, "pairs.jsonl")
    line_numbers = write_data(data, rows, seed=7)
    rows_by_line = dict(zip(line_numbers, rows))
    print(f"{len(rows)} rows ({n_fixture} fixtures, {len(rows) - n_fixture} generated), settings {SETTINGS}")

    references = expected_by_reference(SETTINGS, lambda tokenize, s: reference(rows, line_numbers, tokenize, *s))
    ok = check_against_references(tmp, SETTINGS, lambda model, s: run_dpo_data(tulu, model, data, *s),
                                  references, rows_by_line, FIELDS,
                                  lambda s: f"max_length {s[0]}, max_prompt_length {s[1]}")

    # The checks can fail: the settings must exercise no truncation, prompt cuts, completion
    # cuts and dropping; every untruncated completion ends in </s>; prompts are multi-turn.
    expected = references[0][1]
    full = expected[(8192, None)]
    assert full[1]["truncated"] == 0 and full[1]["dropped"] == 0
    assert all(p["chosen_ids"][-1] == 2 and p["rejected_ids"][-1] == 2 for p in full[0])
    assert max(p["prompt_ids"].count(2) for p in full[0]) >= 2  # earlier assistant turns in prompts
    assert expected[(23, 8)][1]["dropped"] == 0 and expected[(23, 8)][1]["truncated"] > len(rows) // 3
    assert expected[(64, None)][1]["dropped"] > 0
    cut_prompts = [p for p in expected[(41, 16)][0] if len(p["prompt_ids"]) == 16 and p["prompt_ids"][0] == 1]
    assert len(cut_prompts) > 10, len(cut_prompts)

    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
