"""Markdown rows for docs/benchmarks.md from `tulu bench -o json` files (llama-bench's
fields). The tg bound is the machine's read bandwidth divided by the bytes of weights read
per generated token (weight_bytes_per_token: every weight but the untied embedding table,
of which one row; the KV cache and activations are ignored, so the bound is slightly
optimistic).

usage: bench_table.py --bandwidth-gbs 24.4 LABEL=FILE.json [LABEL=FILE.json ...]
"""

import argparse
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bandwidth-gbs", type=float, required=True,
                        help="measured read bandwidth for the thread count used, GB/s")
    parser.add_argument("runs", nargs="+", help="LABEL=path to tulu bench -o json output")
    args = parser.parse_args()
    print("| model | format | weights | pp512 t/s | tg128 t/s | tg bound t/s | tg / bound "
          "| peak RSS | reps |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        label, path = run.split("=", 1)
        with open(path) as f:
            rows = json.load(f)
        pp = next((r for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0), None)
        tg = next((r for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0), None)
        first = rows[0]
        size = first["model_size"]
        bound = args.bandwidth_gbs * 1e9 / first["weight_bytes_per_token"]
        fmt = first["model_type"].split()[-1]
        cell = lambda r: f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}" if r else "—"
        fraction = f"{100 * tg['avg_ts'] / bound:.0f} %" if tg else "—"
        rss = max(r["peak_rss_bytes"] for r in rows) / 2**20
        print(f"| {label} | {fmt} | {size / 2**20:.0f} MiB | {cell(pp)} | {cell(tg)} "
              f"| {bound:.1f} | {fraction} | {rss:.0f} MiB | {len(first['samples_ts'])} |")


if __name__ == "__main__":
    main()
