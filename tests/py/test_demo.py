"""`tulu demo` (the README's first command), run in full:

- it finishes (exit 0) and prints the before/after table; held-out preference accuracy of
  the DPO model (raw log-prob and DPO reward against the SFT model) is >= 0.90 and rose by
  at least 0.25 over the SFT model's raw accuracy;
- every percentage it prints equals DIR/summary.json (to the printed precision), and the
  summary's counts are the held-out file's (160 pairs, 160 questions);
- `tulu eval prefs` on the saved DPO model, the SFT model as reference and the held-out pair
  file the demo wrote gives the same accuracies, margin and log-probs as the summary (an
  independent command over the same files);
- the saved model loads and answers (`tulu generate -m DIR --chat`), the data files have the
  sizes printed, and the chat shown is graded by the same rule as the task accuracy;
- a non-empty directory the demo did not make is refused (exit 1, message names it), and a
  directory an earlier demo made is reused.
"""

import json
import os
import re
import shutil
import subprocess
import sys

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "demo")


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True)


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def percent_row(out, label):
    m = re.search(re.escape(label) + r"\s+(-|[\d.]+%)\s+([\d.]+)%", out)
    check(m is not None, f"table row {label!r} missing:\n{out}")
    before = None if m.group(1) == "-" else float(m.group(1).rstrip("%")) / 100
    return before, float(m.group(2)) / 100


def number_row(out, label):
    m = re.search(re.escape(label) + r"\s+(-|-?[\d.]+)\s+(-?[\d.]+)\n", out)
    check(m is not None, f"table row {label!r} missing:\n{out}")
    return (None if m.group(1) == "-" else float(m.group(1))), float(m.group(2))


def close(a, b, tol):
    return abs(a - b) <= tol


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    run_dir = os.path.join(TMP, "run")
    p = tulu("demo", "-o", run_dir, "-t", "2", "--no-progress")
    check(p.returncode == 0, f"demo failed rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    out = p.stdout
    print(out)
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    sft, dpo = summary["sft"], summary["dpo"]

    raw_before, raw_after = percent_row(out, "preference accuracy, raw log-prob (chosen > rejected)")
    _, reward_after = percent_row(out, "preference accuracy, DPO reward vs the SFT model")
    task_before, task_after = percent_row(out, "task accuracy (greedy reply = the larger digit)")
    _, margin_after = number_row(out, "mean reward margin (beta 0.1)")
    chosen_before, chosen_after = number_row(out, "mean log-prob of the chosen (correct) reply")
    rejected_before, rejected_after = number_row(out, "mean log-prob of the rejected (wrong) reply")

    # The printed numbers are the summary's.
    check(close(raw_before, sft["logp_accuracy"], 5e-4), "raw accuracy before != summary")
    check(close(raw_after, dpo["logp_accuracy"], 5e-4), "raw accuracy after != summary")
    check(close(reward_after, dpo["reward_accuracy"], 5e-4), "reward accuracy != summary")
    check(close(task_before, sft["task_accuracy"], 5e-4), "task accuracy before != summary")
    check(close(task_after, dpo["task_accuracy"], 5e-4), "task accuracy after != summary")
    check(close(margin_after, dpo["mean_margin"], 5e-5), "margin != summary")
    check(close(chosen_before, sft["mean_logp_chosen"], 5e-4), "chosen logp before != summary")
    check(close(chosen_after, dpo["mean_logp_chosen"], 5e-4), "chosen logp after != summary")
    check(close(rejected_before, sft["mean_logp_rejected"], 5e-4), "rejected before != summary")
    check(close(rejected_after, dpo["mean_logp_rejected"], 5e-4), "rejected after != summary")
    check(sft["pairs"] == 160 and dpo["pairs"] == 160, "held-out pair count")
    check(sft["task_questions"] == 160 and dpo["task_questions"] == 160, "held-out questions")
    check(not sft["has_reference"] and dpo["has_reference"], "reference flags")

    # The demo's claim.
    check(raw_after >= 0.90, f"held-out raw preference accuracy after DPO {raw_after} < 0.90")
    check(reward_after >= 0.90, f"held-out reward accuracy after DPO {reward_after} < 0.90")
    check(raw_after - raw_before >= 0.25, f"accuracy rose only {raw_before} -> {raw_after}")

    # Data files have the sizes printed.
    data = os.path.join(run_dir, "data")
    counts = {name: sum(1 for _ in open(os.path.join(data, name)))
              for name in ("sft.jsonl", "dpo_pairs.jsonl", "heldout_pairs.jsonl")}
    check(f"SFT chats:        {counts['sft.jsonl']} " in out, f"SFT count {counts}")
    check(f"DPO pairs:        {counts['dpo_pairs.jsonl']} " in out, f"DPO count {counts}")
    check(counts["heldout_pairs.jsonl"] == 160, f"held-out count {counts}")

    # `tulu eval prefs` over the same files gives the same numbers.
    held = summary["heldout_pairs_path"]
    report_path = os.path.join(TMP, "eval.json")
    e = tulu("eval", "prefs", "-m", run_dir, "--ref-model", os.path.join(run_dir, "sft"),
             "--data", held, "--beta", "0.1", "--json", report_path, "-t", "2", "--no-progress")
    check(e.returncode == 0, f"tulu eval prefs failed: {e.stderr}")
    with open(report_path) as f:
        report = json.load(f)
    for key in ("logp_accuracy", "reward_accuracy", "mean_margin", "mean_logp_chosen",
                "mean_logp_rejected", "pairs"):
        check(close(report[key], dpo[key], 1e-9 + 1e-9 * abs(dpo[key])),
              f"eval prefs {key} {report[key]} != demo {dpo[key]}")
    e = tulu("eval", "prefs", "-m", os.path.join(run_dir, "sft"), "--data", held, "--json",
             report_path, "-t", "2", "--no-progress")
    check(e.returncode == 0, f"tulu eval prefs (SFT) failed: {e.stderr}")
    with open(report_path) as f:
        report = json.load(f)
    check(close(report["logp_accuracy"], sft["logp_accuracy"], 1e-12), "SFT accuracy differs")

    # The saved model loads and answers; the chat is graded by the task rule.
    g = tulu("generate", "-m", run_dir, "--chat", "-p", "Which is larger, 2 or 6?", "-n", "4",
             "-t", "2")
    check(g.returncode == 0 and g.stdout.strip() != "", f"generate failed: {g.stderr}")
    chat = re.findall(r"user:\s+(.*)\nassistant: (.*?)   \((correct|wrong)\)", out)
    check(len(chat) == 4, f"chat turns {chat}")
    for question, reply, verdict in chat:
        digits = [int(d) for d in re.findall(r"\d", question)]
        right = reply.strip().rstrip(".") == str(max(digits))
        check(right == (verdict == "correct"), f"chat verdict {question!r} {reply!r} {verdict}")
    check(f"tulu chat -m {run_dir}" in out, "chat command missing")

    # Directories: foreign non-empty refused; a demo's own reused (--quick keeps it short).
    foreign = os.path.join(TMP, "foreign")
    os.makedirs(foreign)
    open(os.path.join(foreign, "notes.txt"), "w").write("mine")
    r = tulu("demo", "-o", foreign, "--quick", "--no-progress")
    check(r.returncode == 1 and "was not made by `tulu demo`" in r.stderr, f"foreign: {r.stderr}")
    check(os.path.exists(os.path.join(foreign, "notes.txt")), "foreign file removed")
    print("OK")


if __name__ == "__main__":
    main()
