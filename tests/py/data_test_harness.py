"""Harnesses shared by the data-pipeline tests of `tulu sft-data` and `tulu dpo-data`:

- BadRowHarness (test_*_data_errors.py): each malformed row alone, invalid UTF-8, the same
  rows under --skip-bad-rows, file cases (exit 1) and option cases (exit 2), collecting
  failures instead of stopping at the first.
- The reference comparison (test_*_data_reference.py): the rows written with blank lines,
  tulu's output and summary line parsed, the reference's expected rows, a row-by-row
  comparison, and the two tokenizer references (Python SentencePiece, npm `tokenizers`)."""
import json
import os
import random
import re
import shutil
import subprocess
import sys

from tokenizer_cases import LLAMA2_DIR, make_model_dirs, report_mismatches, run_node_reference
from tokenizer_sp_reference import SentencePieceLegacyReference

SUMMARY_FIELDS = ["rows_read", "kept", "dropped", "truncated", "bad"]


class BadRowHarness:
    """Runs `tulu <command>` on bad input in TULU_TEST_TMP/<tmp_name>, with the tokenizer.model
    directory (it loads ~5x faster than tokenizer.json under ASan; the JSON loader is exercised
    by the reference tests). `good` is a valid row (a dict)."""

    def __init__(self, command, tmp_name, good):
        self.tulu = os.environ["TULU_BIN"]
        self.command = command
        self.tmp = os.path.join(os.environ["TULU_TEST_TMP"], tmp_name)
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        _, self.model = make_model_dirs(os.path.join(self.tmp, "tokenizer"))
        self.good = json.dumps(good)
        self.failures = []

    def run(self, args, timeout=120):
        proc = subprocess.run([self.tulu, self.command] + args, capture_output=True, timeout=timeout)
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")

    def check(self, title, rc, err, want_rc, words):
        """Exit code want_rc, every word in stderr, and no internal error."""
        if rc != want_rc or not all(w in err for w in words) or "internal error" in err:
            self.failures.append((title, rc, err.strip()[:300]))
        else:
            print(f"ok  {title} → exit {rc}: {err.strip().splitlines()[-1][:140]}")

    def fail(self, *failure):
        self.failures.append(failure)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def check_bad_rows(self, bad_rows):
        """bad_rows: (name, bad line, words the message must contain after "FILE:LINE: "). Each
        bad row alone, after two good lines and a blank one: the message names line 4."""
        for i, (name, line, words) in enumerate(bad_rows):
            path = self.write(f"bad{i}.jsonl", f"{self.good}\n{self.good}\n\n{line}\n{self.good}\n")
            rc, out, err = self.run(["-m", self.model, "--data", path])
            self.check(name, rc, err, 1, [f"tulu {self.command}: error: {path}:4: "] + words)

    def check_invalid_utf8(self, raw_row, byte):
        """A good line, then raw_row (bytes holding invalid UTF-8): named by line 2 and byte."""
        path = os.path.join(self.tmp, "utf8.jsonl")
        with open(path, "wb") as f:
            f.write(self.good.encode() + b"\n" + raw_row + b"\n")
        rc, out, err = self.run(["-m", self.model, "--data", path])
        self.check("invalid UTF-8", rc, err, 1, [f"{path}:2: invalid UTF-8 at byte {byte}"])

    def check_skip_bad_rows(self, bad_rows, raw_row):
        """--skip-bad-rows: every bad row and raw_row (invalid UTF-8) between two good lines is
        counted, the good rows kept; without the flag the first bad row stops it."""
        lines = [self.good] + [line for _, line, _ in bad_rows] + [self.good]
        mixed = os.path.join(self.tmp, "mixed.jsonl")
        with open(mixed, "wb") as f:
            f.write("\n".join(lines).encode("utf-8") + b"\n" + raw_row + b"\n")
        rc, out, err = self.run(["-m", self.model, "--data", mixed, "--skip-bad-rows"])
        kept = [json.loads(line)["line"] for line in out.splitlines() if line.strip()]
        m = re.search(r"rows read: (\d+), kept: (\d+), .* bad rows skipped: (\d+)", err)
        n_bad = len(bad_rows) + 1
        if rc != 0 or not m or m.groups() != (str(n_bad + 2), "2", str(n_bad)) \
                or kept != [1, len(bad_rows) + 2] or f"first bad row: {mixed}:2: invalid JSON" not in err:
            self.failures.append(("--skip-bad-rows", rc, kept, err.strip()[-300:]))
        else:
            print(f"ok  --skip-bad-rows: {n_bad} bad rows counted, lines {kept} kept")
        rc, out, err = self.run(["-m", self.model, "--data", mixed])
        self.check("mixed without --skip-bad-rows", rc, err, 1, [f"{mixed}:2: invalid JSON"])

    def check_rows(self, bad_rows, utf8_row, utf8_byte, skipped_utf8_row):
        """check_bad_rows, check_invalid_utf8(utf8_row, utf8_byte) and
        check_skip_bad_rows(bad_rows, skipped_utf8_row)."""
        self.check_bad_rows(bad_rows)
        self.check_invalid_utf8(utf8_row, utf8_byte)
        self.check_skip_bad_rows(bad_rows, skipped_utf8_row)

    def check_file_cases(self, cases):
        """The files every data command refuses with exit 1 (missing, empty, blank lines only,
        a directory), then `cases` (title, args after --model, words)."""
        self.check_cases(self.common_file_cases() + cases, 1)

    def common_file_cases(self):
        """(title, args, words) every data command fails on with exit 1 (after --model)."""
        return [
            ("missing file", ["--data", os.path.join(self.tmp, "absent.jsonl")], ["absent.jsonl: cannot open"]),
            ("empty file", ["--data", self.write("empty.jsonl", "")], ["empty.jsonl: no rows"]),
            ("blank lines only", ["--data", self.write("blank.jsonl", "\n  \n\t\n")], ["blank.jsonl: no rows"]),
            ("a directory as data", ["--data", self.tmp], [self.tmp + ": is a directory"]),
        ]

    def check_cases(self, cases, want_rc):
        """(title, args after --model, words): each must exit want_rc naming the words."""
        for title, args, words in cases:
            rc, out, err = self.run(["-m", self.model] + args)
            self.check(title, rc, err, want_rc, words)

    def check_missing_tokenizer(self, data):
        rc, out, err = self.run(["-m", os.path.join(self.tmp, "no-model"), "--data", data])
        self.check("missing tokenizer dir", rc, err, 1, ["no-model"])

    def finish(self):
        """Prints the failures and exits 1 when there are any, else prints OK."""
        if self.failures:
            for f in self.failures:
                print("FAIL", f)
            sys.exit(1)
        print("OK")


def write_data(path, rows, seed):
    """One row per line, with blank lines sprinkled in (line numbers must still match).
    Returns each row's line number."""
    lines = []
    rng = random.Random(seed)
    for row in rows:
        while rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\t"]))
        lines.append(json.dumps(row, ensure_ascii=False))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return [i + 1 for i, line in enumerate(lines) if line.strip()]


def run_data_command(args, dropped):
    """Runs a data command (args from the binary on); returns its JSONL rows and its summary
    (SUMMARY_FIELDS). `dropped`: the summary's words for a dropped row."""
    proc = subprocess.run(args, capture_output=True, timeout=600)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {stderr}")
    rows = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    m = re.search(r"rows read: (\d+), kept: (\d+), dropped \(" + re.escape(dropped) + r"\): (\d+), "
                  r"truncated: (\d+), bad rows skipped: (\d+)", stderr)
    assert m, f"no summary line in stderr: {stderr!r}"
    return rows, dict(zip(SUMMARY_FIELDS, map(int, m.groups())))


def reference_rows(rows, line_numbers, encode, fields):
    """What tulu should print: encode(row) -> {"kept", "truncated", *fields}; the kept rows
    with their line numbers and the summary counts."""
    kept, summary = [], {"rows_read": len(rows), "kept": 0, "dropped": 0, "truncated": 0, "bad": 0}
    for row, line in zip(rows, line_numbers):
        out = encode(row)
        summary["truncated"] += out["truncated"]
        if out["kept"]:
            summary["kept"] += 1
            kept.append({"line": line, **{k: out[k] for k in fields}})
        else:
            summary["dropped"] += 1
    return kept, summary


def compare_rows(want, got, rows_by_line, fields):
    """Row-by-row comparison of the kept rows (by line number); returns the mismatches."""
    bad = []
    want_by_line = {e["line"]: e for e in want}
    got_by_line = {e["line"]: e for e in got}
    for line in sorted(set(want_by_line) | set(got_by_line)):
        w, g = want_by_line.get(line), got_by_line.get(line)
        row = json.dumps(rows_by_line[line], ensure_ascii=False)[:80]
        if w is None or g is None:
            bad.append((f"line {line}", "kept by " + ("tulu only" if w is None else "the reference only"), row))
        elif w != g:
            differ = [k for k in fields if w[k] != g[k]]
            bad.append((f"line {line}", "differ in", differ, "want", [w[k][:12] for k in differ],
                        "got", [g[k][:12] for k in differ], row))
    if [e["line"] for e in got] != sorted(e["line"] for e in got):
        bad.append(("tulu's rows are not in file order",))
    return bad


def expected_by_reference(settings, expect):
    """The expected output per setting on both tokenizer references: expect(tokenize, setting)
    -> (rows, summary). Returns [(reference name, {setting: expected})]: SentencePiece always,
    HF tokenizers (npm) on every text SentencePiece was asked for, unless npm's package is
    missing (SKIP printed)."""
    sp = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"))
    cache, requested = {}, []

    def sp_tokenize(text):
        if text not in cache:
            cache[text] = sp.encode(text, True)
            requested.append(text)
        return cache[text]

    references = [("SentencePiece", {s: expect(sp_tokenize, s) for s in settings})]
    node = run_node_reference(os.path.join(LLAMA2_DIR, "tokenizer.json"),
                              [{"encode": t, "add_special": True} for t in requested])
    if node is None:
        print("SKIP: npm tokenizers not installed (tests/reference/node_modules); SentencePiece reference only")
        return references
    hf_ids = {t: a["ids"] for t, a in zip(requested, node)}
    differ = [t for t in requested if hf_ids[t] != cache[t]]
    print(f"references agree (SentencePiece vs HF tokenizers) on {len(requested) - len(differ)}/"
          f"{len(requested)} tokenized texts" + (f"; differ on {[t[:40] for t in differ[:5]]}" if differ else ""))
    references.append(("HF tokenizers", {s: expect(hf_ids.__getitem__, s) for s in settings}))
    return references


def check_against_references(tmp, settings, run_tulu, references, rows_by_line, fields, describe):
    """For both of tulu's tokenizer loaders (tokenizer.json and tokenizer.model made under
    tmp) and every setting: run_tulu(model, setting) -> (rows, summary) compared with each
    reference's. describe(setting) names it in the report. Returns whether all matched."""
    json_dir, sp_dir = make_model_dirs(tmp)
    ok = True
    for name, model in {"json": json_dir, "sentencepiece": sp_dir}.items():
        for s in settings:
            got, got_summary = run_tulu(model, s)
            for ref_name, expected in references:
                want, want_summary = expected[s]
                bad = compare_rows(want, got, rows_by_line, fields)
                if got_summary != want_summary:
                    bad.append(("summary", "want", want_summary, "got", got_summary))
                ok &= report_mismatches(f"[{name} loader, {describe(s)}] vs reference on {ref_name} "
                                        f"(kept {want_summary['kept']}, dropped {want_summary['dropped']}, "
                                        f"truncated {want_summary['truncated']})", bad, len(rows_by_line))
    return ok
