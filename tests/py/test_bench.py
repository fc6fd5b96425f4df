"""`tulu bench` output shape (not speed): `-o json` must be a JSON array with one object per
test carrying llama-bench's field names, with values that agree with each other and with
the model (parameter count and weight bytes computed here from the state dict written),
and positive speeds; `-o md` must print a pp and a tg row; bad options must fail clearly.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

import gguf_reference as gr
import hf_checkpoint

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "bench")

LLAMA_BENCH_FIELDS = [
    "build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename",
    "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads",
    "type_k", "type_v", "use_mmap", "n_prompt", "n_gen", "test_time", "avg_ns", "stddev_ns",
    "avg_ts", "stddev_ts", "samples_ns", "samples_ts",
]


def run(args):
    return subprocess.run([TULU, "bench", *args], capture_output=True, text=True)


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def check_json(model_dir, dtype, n_params, n_bytes, per_token):
    p = run(["-m", model_dir, "-p", "16", "-n", "5", "-r", "3", "-t", "2", "-o", "json"])
    assert p.returncode == 0, f"bench -o json failed: {p.stderr}"
    rows = json.loads(p.stdout)
    assert isinstance(rows, list) and len(rows) == 2, f"expected 2 tests, got {p.stdout[:200]}"
    assert [(r["n_prompt"], r["n_gen"]) for r in rows] == [(16, 0), (0, 5)], rows
    for r in rows:
        missing = [f for f in LLAMA_BENCH_FIELDS if f not in r]
        assert not missing, f"missing llama-bench fields: {missing}"
        assert r["n_threads"] == 2, r["n_threads"]
        assert r["model_n_params"] == n_params, (r["model_n_params"], n_params)
        assert r["model_size"] == n_bytes, (r["model_size"], n_bytes)
        assert dtype.upper() in r["model_type"], r["model_type"]
        ns, ts = r["samples_ns"], r["samples_ts"]
        assert len(ns) == 3 and len(ts) == 3, (ns, ts)
        assert all(x > 0 for x in ns) and all(x > 0 for x in ts), (ns, ts)
        tokens = r["n_prompt"] + r["n_gen"]
        for n, t in zip(ns, ts):
            assert close(t, tokens * 1e9 / n), (t, tokens * 1e9 / n)
        assert close(r["avg_ts"], statistics.mean(ts)), (r["avg_ts"], statistics.mean(ts))
        assert close(r["stddev_ts"], statistics.stdev(ts)), (r["stddev_ts"], statistics.stdev(ts))
        assert abs(r["avg_ns"] - statistics.mean(ns)) <= 1, (r["avg_ns"], statistics.mean(ns))
        assert r["avg_ts"] > 0 and r["load_time_ms"] > 0, r
        assert r["peak_rss_bytes"] > 0 and r["kv_cache_bytes"] > 0, r
        assert r["weight_bytes_per_token"] == per_token, (r["weight_bytes_per_token"], per_token)
        print(f"ok   {dtype} {'pp' if r['n_prompt'] else 'tg'}: {r['avg_ts']:.1f} ± "
              f"{r['stddev_ts']:.1f} t/s over {len(ts)} reps; params {n_params}, "
              f"{n_bytes} bytes, as computed from the state dict")


def main():
    config = hf_checkpoint.make_config(hidden=64, intermediate=128, layers=2, heads=4,
                                       kv_heads=2, vocab=300, max_pos=64)
    model_dirs, states = {}, {}
    for dtype in ("float32", "bfloat16"):
        state = hf_checkpoint.make_state_dict(config, seed=5, dtype=dtype)
        model_dir = os.path.join(TMP, dtype)
        hf_checkpoint.write_model_dir(model_dir, config, state, tokenizer=False)
        n_params = sum(t.numel() for t in state.values())
        n_bytes = sum(t.numel() * t.element_size() for t in state.values())
        embed = state["model.embed_tokens.weight"]
        # Decode reads every weight but the (untied) embedding table, of which one row.
        per_token = n_bytes - embed.numel() * embed.element_size() + embed.shape[1] * embed.element_size()
        check_json(model_dir, {"float32": "f32", "bfloat16": "bf16"}[dtype], n_params, n_bytes,
                   per_token)
        model_dirs[dtype] = model_dir
        states[dtype] = {name: t.float() for name, t in state.items()}  # bf16 values, as floats

    md = run(["-m", model_dirs["float32"], "-p", "8", "-n", "4", "-r", "2", "-t", "1"])
    assert md.returncode == 0, md.stderr
    assert "| pp8 |" in md.stdout and "| tg4 |" in md.stdout and "peak RSS" in md.stdout, md.stdout
    print("ok   -o md prints pp8 and tg4 rows and the peak RSS line")

    for flags, mapped in (([], True), (["--no-mmap"], False)):
        p = run(["-m", model_dirs["bfloat16"], "-p", "4", "-n", "2", "-r", "1", "-o", "json", *flags])
        assert p.returncode == 0, p.stderr
        assert [r["use_mmap"] for r in json.loads(p.stdout)] == [mapped, mapped], p.stdout[:300]
    print("ok   use_mmap is true by default and false with --no-mmap")

    for flags, on in (([], False), (["--bf16-activations"], True)):
        p = run(["-m", model_dirs["bfloat16"], "-p", "4", "-n", "0", "-r", "1", "-o", "json", *flags])
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)[0]
        assert r["bf16_activations"] is on and r["prompt_gemm"], p.stdout[:300]
    print("ok   bf16_activations is false by default and true with --bf16-activations; prompt_gemm named")

    # A BF16 GGUF file defaults to bf16 prompt activations (llama.cpp's numerics for its own
    # format); --f32-activations restores the exact path. Only on CPUs with AVX-512 BF16
    # does the choice take effect, but it is reported everywhere.
    gguf = os.path.join(TMP, "bench-bf16.gguf")  # the same weights, by the reference GGUF writer
    gr.write_gguf(gguf, gr.llama_metadata(config), gr.llama_tensors(config, states["bfloat16"], gr.GGML_BF16))
    for flags, on in (([], True), (["--f32-activations"], False), (["--bf16-activations"], True)):
        p = run(["-m", gguf, "-p", "4", "-n", "0", "-r", "1", "-o", "json", *flags])
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)[0]["bf16_activations"] is on, (flags, p.stdout[:300])
    p = run(["-m", gguf, "-p", "4", "-n", "0", "--f32-activations", "--bf16-activations"])
    assert p.returncode != 0 and "excludes" in p.stderr, p.stderr
    print("ok   a BF16 GGUF reports bf16_activations by default, not with --f32-activations; the two flags exclude each other")

    # Q4_0 weights are repacked at load on CPUs with the AVX-512 VNNI + VBMI kernels: every
    # linear weight with rows in whole groups of 16 (here all, the lm_head included; not the
    # embedding), the bytes reported; --no-repack keeps the file's layout and reports 0.
    vocab = 32000  # GGUF files carry the real tokenizer
    q_config = hf_checkpoint.make_config(hidden=64, intermediate=128, layers=2, heads=4,
                                         kv_heads=2, vocab=vocab, max_pos=64)
    q_dir = os.path.join(TMP, "for-q4_0")
    hf_checkpoint.write_model_dir(q_dir, q_config, hf_checkpoint.make_state_dict(q_config, seed=6))
    gguf = os.path.join(TMP, "q4_0.gguf")
    q = subprocess.run([TULU, "quantize", q_dir, gguf, "--type", "q4_0"],
                       capture_output=True, text=True)
    assert q.returncode == 0, q.stderr
    linear = [(64, 64), (32, 64), (32, 64), (64, 64), (128, 64), (128, 64), (64, 128)]
    expected = (q_config["num_hidden_layers"] * sum(o * i // 32 * 18 for o, i in linear)
                + vocab * 64 // 32 * 18)
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    fast = all(f" {flag}" in flags for flag in ("avx512_vnni", "avx512vbmi", "avx512bw"))
    for flags_, want in (([], expected if fast else 0), (["--no-repack"], 0)):
        p = run(["-m", gguf, "-p", "4", "-n", "2", "-r", "1", "-o", "json", *flags_])
        assert p.returncode == 0, p.stderr
        assert [r["repacked_bytes"] for r in json.loads(p.stdout)] == [want, want], p.stdout[:300]
    print(f"ok   repacked_bytes {expected if fast else 0} by default (AVX-512 VNNI: {fast}), "
          f"0 with --no-repack")

    cases = [
        (["-o", "xml"], ["xml"]),
        (["-p", "0", "-n", "0"], ["-p and -n are both 0"]),
        (["-p", "60", "-n", "10"], ["max_position_embeddings", "64"]),
        (["-r", "0"], ["repetitions"]),
    ]
    failures = 0
    for args, fragments in cases:
        p = run(["-m", model_dirs["float32"], *args])
        ok = p.returncode != 0 and all(f in p.stderr for f in fragments) and "Sanitizer" not in p.stderr
        first = p.stderr.strip().splitlines()[0] if p.stderr.strip() else ""
        print(f"{'ok  ' if ok else 'FAIL'} {' '.join(args):<20} exit {p.returncode}: {first}")
        failures += not ok
    if failures:
        sys.exit(f"{failures} bad-input case(s) failed")


if __name__ == "__main__":
    main()
