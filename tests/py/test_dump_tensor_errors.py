"""`tulu dump-tensor` on GGUF models (made by `tulu quantize` from a `tulu init` model): the
.npy it writes says truthfully what it holds.

- a block-quantized tensor (Q8_0, Q4_0) without --f32 is refused with exit 1 and a message
  naming the tensor, its type and --f32; no file is written;
- with --f32 it is the dequantized float32 values, equal to ggml's reference dequantizer
  (tests/reference/ggml_quants.py) on the file's blocks read by tests/reference/gguf_reference.py
  (q_proj/k_proj rows un-permuted, as every command reads them);
- an F32 tensor of the same file (a norm) is dumped as its stored <f4 bits;
- --list names every tensor with its GGUF type.
Fast (a tiny model); runs in the ASan build too (label "errors")."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

import gguf_reference as gr

TULU = os.environ["TULU_BIN"]
TMP = os.path.join(os.environ["TULU_TEST_TMP"], "dump_tensor_errors")
HEADS = 4
failures = []


def tulu(*args):
    return subprocess.run([TULU, *args], capture_output=True, text=True, timeout=300)


def check(ok, label, detail=""):
    if ok:
        print(f"  ok   {label}")
    else:
        failures.append(label)
        print(f"  FAIL {label}: {detail}")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    hf = os.path.join(TMP, "hf")
    p = tulu("init", "-o", hf, "--hidden-size", "64", "--intermediate-size", "96", "--layers", "1",
             "--heads", str(HEADS), "--kv-heads", "2", "--seed", "3")
    assert p.returncode == 0, p.stderr
    npy = os.path.join(TMP, "t.npy")
    for type_name, ggml_type in (("Q8_0", gr.GGML_Q8_0), ("Q4_0", gr.GGML_Q4_0)):
        print(type_name)
        gguf = os.path.join(TMP, f"m_{type_name}.gguf")
        p = tulu("quantize", hf, gguf, "--type", type_name.lower(), "--name", "test")
        assert p.returncode == 0, p.stderr
        contents = gr.read_gguf(gguf)

        p = tulu("dump-tensor", "-m", gguf, "--list")
        listed = {row["name"]: row["dtype"] for row in map(json.loads, p.stdout.splitlines())}
        check(p.returncode == 0 and listed.get("model.layers.0.mlp.down_proj.weight") == type_name
              and listed.get("model.norm.weight") == "F32", f"--list names {type_name} and F32 tensors",
              p.stderr or str(listed)[:300])

        for hf_name in ("model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight",
                        "model.layers.0.self_attn.k_proj.weight", "model.embed_tokens.weight"):
            if os.path.exists(npy):
                os.remove(npy)
            stored_type, dims, data = contents.tensors[gr.gguf_name(hf_name)]
            assert stored_type == ggml_type, (hf_name, stored_type)
            p = tulu("dump-tensor", "-m", gguf, "--name", hf_name, "-o", npy)
            check(p.returncode == 1 and all(w in p.stderr for w in (hf_name, type_name, "block-quantized", "--f32"))
                  and "internal error" not in p.stderr and not os.path.exists(npy),
                  f"{hf_name} ({type_name}) without --f32 is refused", f"exit {p.returncode}: {p.stderr.strip()}")

            p = tulu("dump-tensor", "-m", gguf, "--name", hf_name, "-o", npy, "--f32")
            want = gr.decode(data, ggml_type, dims).numpy()
            if "q_proj" in hf_name:
                want = gr.unpermute_qk(want, HEADS)
            elif "k_proj" in hf_name:
                want = gr.unpermute_qk(want, 2)
            got = np.load(npy) if p.returncode == 0 else None
            check(got is not None and got.dtype == np.float32 and got.shape == want.shape
                  and np.array_equal(got, want) and np.abs(want).max() > 0,
                  f"{hf_name} --f32 = ggml's dequantization {want.shape}",
                  p.stderr.strip() if got is None else f"{got.dtype} {got.shape}")

        stored_type, dims, data = contents.tensors["output_norm.weight"]
        p = tulu("dump-tensor", "-m", gguf, "--name", "model.norm.weight", "-o", npy)
        got = np.load(npy) if p.returncode == 0 else None
        check(stored_type == gr.GGML_F32 and got is not None and got.dtype == np.float32
              and got.tobytes() == data and "(<f4)" in p.stdout, "an F32 tensor: its stored <f4 bits",
              p.stderr.strip())

    if failures:
        print(f"FAILED ({len(failures)}): {failures}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
