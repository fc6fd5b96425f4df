"""Bad input to `tulu logits` (the forward-pass command): each case must exit non-zero with
a clear message naming the offending value, and never crash (this test also runs against
the sanitizer build, where a memory error would abort with a sanitizer report instead).
It also checks that a good call next to them succeeds, so that the failures are not
caused by a broken model directory.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

import hf_checkpoint

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "forward_errors")


def run(args):
    return subprocess.run([TULU, "logits", *args], capture_output=True, text=True)


def main():
    model_dir = os.path.join(TMP, "model")
    config = hf_checkpoint.make_config(hidden=32, intermediate=64, layers=1, heads=2, vocab=100, max_pos=16)
    hf_checkpoint.write_model_dir(model_dir, config, hf_checkpoint.make_state_dict(config, seed=3), tokenizer=False)
    out = os.path.join(TMP, "out.npy")

    good = run(["-m", model_dir, "--ids", "1, 5,99", "-o", out])
    assert good.returncode == 0, f"good call failed: {good.stderr}"
    assert np.load(out).shape == (3, 100), np.load(out).shape
    print("ok   good call: [3, 100] logits written")

    # (args, expected exit code (None: any non-zero; CLI11 parse errors have their own
    # codes), fragments the message must contain)
    cases = [
        (["--ids", "1,100"], 1, ["token id 100", "[0, 100)"]),
        (["--ids", "-1"], 1, ["token id -1"]),
        (["--ids", "1,x,3"], 1, ["--ids", "item 2", "'x'"]),
        (["--ids", "1,,3"], 1, ["--ids", "item 2"]),
        (["--ids", "1,2,"], 1, ["--ids", "item 3"]),
        (["--ids", "99999999999"], 1, ["--ids", "99999999999"]),
        (["--ids", "1.5"], 1, ["--ids", "1.5"]),
        (["--ids", "1,2", "--prefill", "3", "--incremental"], 1, ["--prefill 3", "2"]),
        (["--ids", "1,2", "--prefill", "1"], 1, ["--prefill needs --incremental"]),
        (["--ids", "1", "--max-batch", "0"], None, ["max-batch"]),
        (["--ids", "1", "--bogus"], None, ["bogus"]),
    ]
    failures = 0
    for args, code, fragments in cases:
        p = run(["-m", model_dir, "-o", out, *args])
        message = p.stderr.strip()
        code_ok = p.returncode == code if code is not None else p.returncode > 0
        ok = (code_ok and all(f in message for f in fragments)
              and "internal error" not in message and "Sanitizer" not in message)
        first_line = message.splitlines()[0] if message else ""
        print(f"{'ok  ' if ok else 'FAIL'} {' '.join(args):<45} exit {p.returncode}: {first_line}")
        failures += not ok

    # A missing model directory is reported by the loader, naming the path.
    p = run(["-m", os.path.join(TMP, "no-such-model"), "--ids", "1", "-o", out])
    ok = p.returncode == 1 and "no-such-model" in p.stderr
    print(f"{'ok  ' if ok else 'FAIL'} {'missing model directory':<45} exit {p.returncode}: {p.stderr.strip()}")
    failures += not ok

    if failures:
        sys.exit(f"{failures} bad-input case(s) did not give the expected clear error")
    print(f"all {len(cases) + 1} bad-input cases gave clear errors")


if __name__ == "__main__":
    main()
