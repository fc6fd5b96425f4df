"""The repack cache through the CLI (llama/repack_cache.h).

A random model (tulu init, hidden 256, 2 layers) is quantized to Q8_0 and Q4_0. With a fresh
TULU_CACHE_DIR the first load writes one `<file>.<hash>.r16` file and says so on stderr; the
next loads map it without writing (bench JSON: repack_cache, repack_cache_built). Logits of a
prompt batch must be identical with the cache just written, with it mapped, repacked in
memory (--no-repack-cache) and in the file's layout (TULU_REPACK=0). A rewritten model file
and a damaged cache file (truncated, emptied, bytes changed) are each rebuilt; a cache
directory that cannot be made leaves a warning and the in-memory repack; --no-repack-cache,
TULU_REPACK_CACHE=0 and --no-mmap write nothing; two processes writing at once leave one
whole file. On a CPU without the AVX-512 VNNI kernels nothing is repacked and the test says
so and stops.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "repack_cache")
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)

failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        failures.append(message)


def run(args, cache, extra_env=None):
    env = dict(os.environ, TULU_CACHE_DIR=cache, **(extra_env or {}))
    result = subprocess.run([TULU] + args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise AssertionError(f"tulu {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def bench(gguf, cache, *flags, extra_env=None):
    result = run(["bench", "-m", gguf, "-p", "0", "-n", "1", "-r", "1", "-o", "json", *flags], cache, extra_env)
    return json.loads(result.stdout)[0], result.stderr


IDS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889]


def logits(gguf, cache, name, *flags, extra_env=None):
    out = os.path.join(TMP, name + ".npy")
    result = run(["logits", "-m", gguf, "--ids", ",".join(map(str, IDS)), "-o", out, "-t", "2", *flags],
                 cache, extra_env)
    return np.load(out), result.stderr


def cache_files(cache):
    return sorted(glob.glob(os.path.join(cache, "*")))


def main():
    model = os.path.join(TMP, "model")
    run(["init", "-o", model, "--hidden-size", "256", "--intermediate-size", "704", "--layers", "2",
         "--heads", "8", "--kv-heads", "2", "--seed", "11", "--force"], TMP)
    for qtype in ("q8_0", "q4_0"):
        gguf = os.path.join(TMP, f"model-{qtype}.gguf")
        run(["quantize", model, gguf, "--type", qtype], TMP)
        cache = os.path.join(TMP, f"cache-{qtype}", "nested")
        info, _ = bench(gguf, os.path.join(TMP, "probe"), "--no-repack-cache")
        if info["repacked_bytes"] == 0:
            print(f"  skip  {qtype}: this CPU has no AVX-512 VNNI kernels; nothing is repacked")
            continue
        written, err = logits(gguf, cache, qtype + "-written")
        files = cache_files(cache)
        check(len(files) == 1 and files[0].endswith(".r16") and "writing the repacked weights" in err,
              f"{qtype}: first load writes one cache file and says so ({[os.path.basename(f) for f in files]})")
        mtime = os.stat(files[0]).st_mtime_ns
        mapped, err = logits(gguf, cache, qtype + "-mapped")
        check("writing" not in err and os.stat(files[0]).st_mtime_ns == mtime and cache_files(cache) == files,
              f"{qtype}: second load maps the file without writing")
        info, _ = bench(gguf, cache)
        check(info["repack_cache"] == files[0] and info["repack_cache_built"] is False
              and info["repacked_bytes"] > 0,
              f"{qtype}: bench reports the mapped cache ({info['repack_cache']}, built {info['repack_cache_built']})")
        memory, _ = logits(gguf, cache, qtype + "-memory", "--no-repack-cache")
        plain, _ = logits(gguf, cache, qtype + "-plain", extra_env={"TULU_REPACK": "0"})
        for label, got in (("mapped", mapped), ("repacked in memory", memory), ("file layout", plain)):
            check(np.array_equal(got, written),
                  f"{qtype}: logits with the cache just written == {label} "
                  f"(max |Δ| {float(np.max(np.abs(got - written))):.2e})")

        # A rewritten model file: same bytes, new modification time.
        later = time.time() + 5
        os.utime(gguf, (later, later))
        again, err = logits(gguf, cache, qtype + "-touched")
        check("writing" in err and cache_files(cache) == files and np.array_equal(again, written),
              f"{qtype}: a rewritten model file rebuilds its cache in place")
        whole = open(files[0], "rb").read()
        for label, damaged in (("emptied", b""), ("truncated", whole[: len(whole) // 2]),
                               ("magic changed", b"X" + whole[1:]),
                               ("key changed", whole[:40] + b"#" + whole[41:])):
            with open(files[0], "wb") as f:
                f.write(damaged)
            got, err = logits(gguf, cache, qtype + "-damaged")
            check("writing" in err and np.array_equal(got, written) and os.path.getsize(files[0]) == len(whole),
                  f"{qtype}: a cache file {label} is rebuilt")

        blocker = os.path.join(TMP, "not-a-dir")
        open(blocker, "w").close()
        got, err = logits(gguf, os.path.join(blocker, "cache"), qtype + "-unwritable")
        check("repack cache not used" in err and "not-a-dir" in err and np.array_equal(got, written),
              f"{qtype}: an unusable cache directory warns and repacks in memory ({err.strip()[-90:]})")
        for label, flags, env in (("--no-repack-cache", ("--no-repack-cache",), None),
                                  ("TULU_REPACK_CACHE=0", (), {"TULU_REPACK_CACHE": "0"}),
                                  ("--no-mmap", ("--no-mmap",), None)):
            fresh = os.path.join(TMP, f"fresh-{qtype}-{label.strip('-').replace('=', '')}")
            got, err = logits(gguf, fresh, qtype + "-off", *flags, extra_env=env)
            check(not os.path.exists(fresh) and "writing" not in err and np.array_equal(got, written),
                  f"{qtype}: {label} writes no cache and gives the same logits")

        racing = os.path.join(TMP, f"race-{qtype}")
        env = dict(os.environ, TULU_CACHE_DIR=racing)
        procs = [subprocess.Popen([TULU, "logits", "-m", gguf, "--ids", ",".join(map(str, IDS)), "-o",
                                   os.path.join(TMP, f"race-{qtype}-{i}.npy"), "-t", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(3)]
        codes = [p.wait() for p in procs]
        outs = [np.load(os.path.join(TMP, f"race-{qtype}-{i}.npy")) for i in range(3)] if codes == [0] * 3 else []
        check(codes == [0] * 3 and len(cache_files(racing)) == 1
              and cache_files(racing)[0].endswith(".r16")
              and all(np.array_equal(o, written) for o in outs),
              f"{qtype}: three processes writing at once leave one whole file ({cache_files(racing)})")
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
