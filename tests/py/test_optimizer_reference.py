"""The optimizer goldens (tests/data/optim/golden.json, read by tests/train/optimizer_test.cc and
lr_schedule_test.cc) still equal what PyTorch computes: tests/reference/make_optim_golden.py is
re-run into TULU_TEST_TMP and compared with the committed file.

- inputs (initial parameters, gradients), case settings, schedules and step arithmetic: equal;
- torch outputs (parameters after each step, moments, gradient norms, clipped gradients):
  equal on the machine that generated them; elsewhere torch's fp32 kernels may round
  differently (another SIMD width, FMA or not), so within 1e-6 relative, norm-wise per
  vector (the optimizer test's own bound). The count of bit-equal values is printed.

A failure means the generator or torch changed: regenerate with
    /usr/bin/python3 tests/reference/make_optim_golden.py tests/data/optim/golden.json
and review the diff.
"""

import json
import os
import subprocess
import sys

import numpy as np

SOURCE = os.environ.get("TULU_SOURCE_DIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", "/tmp"), "optimizer_reference")
COMMITTED = os.path.join(SOURCE, "tests", "data", "optim", "golden.json")
GENERATOR = os.path.join(SOURCE, "tests", "reference", "make_optim_golden.py")

# Keys holding torch's float32 results (compared with a tolerance); everything else exactly.
TORCH_OUTPUTS = {"params", "exp_avg", "exp_avg_sq", "grad_norm", "norm", "clipped"}

failures = []
stats = {"exact": 0, "close": 0}


def compare(path, want, got, tolerant):
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(want) != set(got):
            failures.append(f"{path}: keys {sorted(want) if isinstance(want, dict) else want} "
                            f"!= {sorted(got) if isinstance(got, dict) else got}")
            return
        for k in want:
            compare(f"{path}.{k}", want[k], got[k], tolerant or k in TORCH_OUTPUTS)
    elif isinstance(want, list) and want and all(isinstance(x, (int, float)) for x in want) and tolerant:
        a, b = np.array(want, dtype=np.float64), np.array(got, dtype=np.float64)
        if a.shape != b.shape:
            failures.append(f"{path}: length {a.shape} != {b.shape}")
            return
        same = int(np.sum(a == b))
        stats["exact"] += same
        stats["close"] += a.size - same
        scale = max(float(np.max(np.abs(a))), 1e-30)
        worst = float(np.max(np.abs(a - b))) / scale
        if worst > 1e-6:
            i = int(np.argmax(np.abs(a - b)))
            failures.append(f"{path}[{i}]: committed {a[i]!r}, torch now {b[i]!r} "
                            f"(max difference {worst:.2e} of the vector's max)")
    elif isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            failures.append(f"{path}: list length differs")
            return
        for i, (w, g) in enumerate(zip(want, got)):
            compare(f"{path}[{i}]", w, g, tolerant)
    elif isinstance(want, float) and tolerant:
        if abs(want - got) > 1e-6 * abs(want):
            failures.append(f"{path}: committed {want!r}, torch now {got!r}")
        else:
            stats["exact" if want == got else "close"] += 1
    elif want != got:
        failures.append(f"{path}: committed {want!r}, generator now {got!r}")


def main():
    os.makedirs(TMP, exist_ok=True)
    fresh = os.path.join(TMP, "golden.json")
    subprocess.run([sys.executable, GENERATOR, fresh], check=True, timeout=300)
    with open(COMMITTED) as f:
        committed = json.load(f)
    with open(fresh) as f:
        regenerated = json.load(f)
    compare("golden", committed, regenerated, tolerant=False)
    # The goldens must be worth checking: steps with and without clipping, decay on and off,
    # every schedule kind, warm-up steps with lr 0.
    cases = committed["adamw"]
    assert any(c["max_norm"] > 0 for c in cases) and any(c["max_norm"] <= 0 for c in cases)
    assert any(c["weight_decay"] > 0 for c in cases) and any(c["weight_decay"] == 0 for c in cases)
    assert any(s["grad_norm"] > c["max_norm"] > 0 for c in cases for s in c["steps"])
    assert any(s["grad_norm"] < c["max_norm"] for c in cases for s in c["steps"])
    assert {s["kind"] for s in committed["schedules"]} == {"linear", "cosine", "constant"}
    assert any(s["lr"] == 0.0 for c in cases for s in c["steps"])
    # The 9-digit text form is a fixed point of float32 rounding (what the C++ test relies on).
    for c in cases:
        for x in c["params0"] + c["steps"][-1]["params"]:
            assert float("%.9g" % np.float32(x)) == x, f"{x!r} is not a 9-digit float32 value"
    print(f"torch outputs: {stats['exact']} values bit-equal to the committed goldens, "
          f"{stats['close']} within 1e-6")
    if failures:
        print(f"{len(failures)} difference(s) between the committed goldens and torch now:")
        for line in failures[:20]:
            print("  " + line)
        sys.exit(1)
    print("committed optimizer goldens equal torch's output")


if __name__ == "__main__":
    main()
