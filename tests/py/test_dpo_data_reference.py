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
import re
import subprocess
import sys

from open_instruct_dpo_encode import encode_pair
from tokenizer_cases import LLAMA2_DIR, SOURCE_DIR, make_model_dirs, report_mismatches, run_node_reference
from tokenizer_sp_reference import SentencePieceLegacyReference

FIXTURE = os.path.join(SOURCE_DIR, "tests", "data", "dpo", "preferences.jsonl")
# (max_length, max_prompt_length or None)
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


def write_data(path, rows):
    """One row per line, with blank lines sprinkled in (line numbers must still match)."""
    lines = []
    rng = random.Random(7)
    for row in rows:
        while rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\t"]))
        lines.append(json.dumps(row, ensure_ascii=False))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return [i + 1 for i, line in enumerate(lines) if line.strip()]


def run_dpo_data(tulu, model, data, max_length, max_prompt_length):
    args = [tulu, "dpo-data", "-m", model, "--data", data, "--max-length", str(max_length)]
    if max_prompt_length is not None:
        args += ["--max-prompt-length", str(max_prompt_length)]
    proc = subprocess.run(args, capture_output=True, timeout=600)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {stderr}")
    pairs = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    m = re.search(r"rows read: (\d+), kept: (\d+), dropped \(empty completion\): (\d+), truncated: (\d+), "
                  r"bad rows skipped: (\d+)", stderr)
    assert m, f"no summary line in stderr: {stderr!r}"
    return pairs, dict(zip(["rows_read", "kept", "dropped", "truncated", "bad"], map(int, m.groups())))


def reference(rows, line_numbers, tokenize, max_length, max_prompt_length):
    pairs, summary = [], {"rows_read": len(rows), "kept": 0, "dropped": 0, "truncated": 0, "bad": 0}
    for row, line in zip(rows, line_numbers):
        out = encode_pair(row, tokenize, max_length, max_prompt_length)
        summary["truncated"] += out["truncated"]
        if out["kept"]:
            summary["kept"] += 1
            pairs.append({"line": line, "prompt_ids": out["prompt_ids"], "chosen_ids": out["chosen_ids"],
                          "rejected_ids": out["rejected_ids"]})
        else:
            summary["dropped"] += 1
    return pairs, summary


def compare(want, got, rows_by_line):
    bad = []
    want_by_line = {p["line"]: p for p in want}
    got_by_line = {p["line"]: p for p in got}
    for line in sorted(set(want_by_line) | set(got_by_line)):
        w, g = want_by_line.get(line), got_by_line.get(line)
        row = json.dumps(rows_by_line[line], ensure_ascii=False)[:80]
        if w is None or g is None:
            bad.append((f"line {line}", "kept by " + ("tulu only" if w is None else "the reference only"), row))
        elif w != g:
            fields = [k for k in ("prompt_ids", "chosen_ids", "rejected_ids") if w[k] != g[k]]
            bad.append((f"line {line}", "differ in", fields, "want", [w[k][:12] for k in fields],
                        "got", [g[k][:12] for k in fields], row))
    if [p["line"] for p in got] != sorted(p["line"] for p in got):
        bad.append(("tulu's pairs are not in file order",))
    return bad


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "dpo_data_reference")
    json_dir, sp_dir = make_model_dirs(tmp)
    loaders = {"json": json_dir, "sentencepiece": sp_dir}

    with open(FIXTURE, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    n_fixture = len(rows)
    rows += generated_rows()
    data = os.path.join(tmp, "pairs.jsonl")
    line_numbers = write_data(data, rows)
    rows_by_line = dict(zip(line_numbers, rows))
    print(f"{len(rows)} rows ({n_fixture} fixtures, {len(rows) - n_fixture} generated), settings {SETTINGS}")

    sp = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"))
    cache, requested = {}, []

    def sp_tokenize(text):
        if text not in cache:
            cache[text] = sp.encode(text, True)
            requested.append(text)
        return cache[text]

    expected = {s: reference(rows, line_numbers, sp_tokenize, *s) for s in SETTINGS}

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
        expected_hf = {s: reference(rows, line_numbers, hf_ids.__getitem__, *s) for s in SETTINGS}

    ok = True
    for name, model in loaders.items():
        for s in SETTINGS:
            got, got_summary = run_dpo_data(tulu, model, data, *s)
            references = [("SentencePiece", expected[s])]
            if expected_hf is not None:
                references.append(("HF tokenizers", expected_hf[s]))
            for ref_name, (want, want_summary) in references:
                bad = compare(want, got, rows_by_line)
                if got_summary != want_summary:
                    bad.append(("summary", "want", want_summary, "got", got_summary))
                ok &= report_mismatches(f"[{name} loader, max_length {s[0]}, max_prompt_length {s[1]}] vs "
                                        f"reference on {ref_name} (kept {want_summary['kept']}, dropped "
                                        f"{want_summary['dropped']}, truncated {want_summary['truncated']})",
                                        bad, len(rows))

    # The checks can fail: the settings must exercise no truncation, prompt cuts, completion
    # cuts and dropping; every untruncated completion ends in </s>; prompts are multi-turn.
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
