"""The DPO loss golden (tests/data/dpo_loss/golden.json, read by tests/train/dpo_loss_test.cc)
still equals what the PyTorch reference computes, so the C++ test cannot rot:

- tests/reference/dpo_loss_reference.py is re-run into TULU_TEST_TMP; inputs, options and
  structure must be identical, every number within 1e-12 relative (torch's float64 kernels may
  round differently on another CPU); the count of bit-equal values is printed;
- the reference itself is checked against the closed-form definitions written with Python's
  math module (losses, rewards, and the derivatives d loss / d summed log-prob).

A failure means the generator or torch changed: regenerate with
    /usr/bin/python3 tests/reference/dpo_loss_reference.py tests/data/dpo_loss/golden.json
and review the diff.
"""

import json
import math
import os
import subprocess
import sys

SOURCE = os.environ.get("TULU_SOURCE_DIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", "/tmp"), "dpo_loss_reference")
COMMITTED = os.path.join(SOURCE, "tests", "data", "dpo_loss", "golden.json")
GENERATOR = os.path.join(SOURCE, "tests", "reference", "dpo_loss_reference.py")

failures = []
stats = {"exact": 0, "close": 0}


def compare(path, want, got):
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(want) != set(got):
            failures.append(f"{path}: keys differ")
            return
        for k in want:
            if k != "torch":  # the generating torch version is informational
                compare(f"{path}.{k}", want[k], got[k])
    elif isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            failures.append(f"{path}: list length differs")
            return
        for i, (a, b) in enumerate(zip(want, got)):
            compare(f"{path}[{i}]", a, b)
    elif isinstance(want, float) and isinstance(got, (int, float)):
        if want == got:
            stats["exact"] += 1
        elif abs(want - got) <= 1e-12 * max(abs(want), abs(got)):
            stats["close"] += 1
        else:
            failures.append(f"{path}: committed {want!r}, regenerated {got!r}")
    elif want != got or type(want) is not type(got):
        failures.append(f"{path}: committed {want!r}, regenerated {got!r}")


def softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def closed_form(options, pair):
    """The definitions, independently of torch: loss, d loss/d summed logps, rewards."""
    kind, beta = options["type"], options["beta"]
    eps, ratio = options["label_smoothing"], options["simpo_gamma_beta_ratio"]
    averaged = kind in ("ipo", "dpo_norm", "simpo")
    lc = pair["chosen_tokens"] if averaged else 1
    lr = pair["rejected_tokens"] if averaged else 1
    pc, pr = pair["policy_chosen"] / lc, pair["policy_rejected"] / lr
    rc, rr = pair["ref_chosen"] / lc, pair["ref_rejected"] / lr
    if kind == "simpo":
        z = (pc - pr) - ratio
        rewards = (beta * pc, beta * pr)
    else:
        z = (pc - pr) - (rc - rr)
        rewards = (beta * (pc - rc), beta * (pr - rr))
    if kind in ("sigmoid", "dpo_norm", "simpo"):
        loss = softplus(-beta * z) * (1 - eps) + softplus(beta * z) * eps
        dz = beta * (-sigmoid(-beta * z) * (1 - eps) + sigmoid(beta * z) * eps)
    elif kind == "ipo":
        loss = (z - 1 / (2 * beta)) ** 2
        dz = 2 * (z - 1 / (2 * beta))
    elif kind == "hinge":
        loss = max(0.0, 1 - beta * z)
        dz = -beta if 1 - beta * z > 0 else 0.0
    else:
        raise ValueError(kind)
    return {"loss": loss, "grad_policy_chosen": dz / lc, "grad_policy_rejected": -dz / lr,
            "reward_chosen": rewards[0], "reward_rejected": rewards[1],
            "logps_chosen": pc, "logps_rejected": pr}


def check_closed_form(golden):
    worst = 0.0
    kinds = set()
    for i, case in enumerate(golden["cases"]):
        kinds.add(case["options"]["type"])
        want = closed_form(case["options"], case["input"])
        for key, value in want.items():
            got = case["expected"][key]
            scale = max(abs(value), abs(got))
            # 1e-9: math's and torch's exp/log1p differ in the last bits, and the averaged
            # losses' 1/len chaining rounds differently from autograd's.
            if abs(value - got) > 1e-9 * scale:
                failures.append(f"cases[{i}] {case['options']} {key}: closed form {value!r}, "
                                f"torch {got!r}")
            elif scale > 0:
                worst = max(worst, abs(value - got) / scale)
    if kinds != {"sigmoid", "ipo", "hinge", "dpo_norm", "simpo"}:
        failures.append(f"loss types covered: {sorted(kinds)}")
    smoothing = {c["options"]["label_smoothing"] for c in golden["cases"]}
    betas = {c["options"]["beta"] for c in golden["cases"]}
    if smoothing != {0.0, 0.1} or betas != {0.1, 0.5}:
        failures.append(f"label smoothing {smoothing}, betas {betas}")
    print(f"closed form vs torch reference: {len(golden['cases'])} cases, worst relative "
          f"difference {worst:.2e}")


def main():
    os.makedirs(TMP, exist_ok=True)
    fresh = os.path.join(TMP, "golden.json")
    subprocess.run([sys.executable, GENERATOR, fresh], check=True)
    with open(COMMITTED) as f:
        committed = json.load(f)
    with open(fresh) as f:
        regenerated = json.load(f)
    compare("golden", committed, regenerated)
    print(f"committed vs regenerated: {stats['exact']} numbers bit-equal, "
          f"{stats['close']} within 1e-12")
    check_closed_form(committed)
    if failures:
        for line in failures[:30]:
            print("FAIL", line)
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
