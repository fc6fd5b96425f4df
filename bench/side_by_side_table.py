"""Markdown table of tulu bench against llama-bench from scripts/llama_cpp_side_by_side.sh.

usage: side_by_side_table.py OUTDIR NAME [NAME ...]

For each NAME, OUTDIR holds NAME.tulu.R.json and NAME.llama.R.json for rounds R = 1, 2, ...
(both in llama-bench's JSON layout: one object per test with n_prompt, n_gen, avg_ts,
samples_ts). Every sample of every round is pooled; the table gives the median tokens/s of
each tool per test and their ratio (tulu ÷ llama.cpp).
"""

import glob
import json
import statistics
import sys


def samples(outdir, name, tool):
    """{(n_prompt, n_gen): [tokens/s samples over every round]} and the model type."""
    tests, model_type = {}, None
    for path in sorted(glob.glob(f"{outdir}/{name}.{tool}.*.json")):
        with open(path) as f:
            for row in json.load(f):
                key = (row["n_prompt"], row["n_gen"])
                tests.setdefault(key, []).extend(row["samples_ts"])
                model_type = model_type or row.get("model_type")
    return tests, model_type


def label(key):
    n_prompt, n_gen = key
    return f"pp{n_prompt}" if n_gen == 0 else f"tg{n_gen}" if n_prompt == 0 else f"pp{n_prompt}+tg{n_gen}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    print("| model file | llama.cpp's model type | test | tulu t/s (median) | llama.cpp t/s (median) "
          "| tulu ÷ llama.cpp | samples each |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in sys.argv[2:]:
        ours, _ = samples(outdir, name, "tulu")
        theirs, their_type = samples(outdir, name, "llama")
        if not ours or not theirs:
            sys.exit(f"{outdir}: no results for {name} from {'tulu' if not ours else 'llama-bench'}")
        for key in sorted(ours, key=lambda k: k[1]):
            if key not in theirs:
                continue
            a, b = statistics.median(ours[key]), statistics.median(theirs[key])
            n = min(len(ours[key]), len(theirs[key]))
            print(f"| {name} | {their_type} | {label(key)} | {a:.1f} | {b:.1f} | {a / b:.2f}× | {n} |")


if __name__ == "__main__":
    main()
