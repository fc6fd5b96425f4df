"""PyTorch side of bench/train_bench.cc: the Hugging Face Llama training forward + backward
(tests/reference/hf_llama_train.py in float32: eager attention, CrossEntropyLoss) on random
weights of the same shape and batch, tokens/s median of the runs after one warm-up.

Run with OpenBLAS at full speed (Debian's default libblas.so.3 is the reference BLAS, and
OpenBLAS misdetects this CPU without the core type):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_CORETYPE=SkylakeX \
  PYTHONPATH=tests/reference /usr/bin/python3 bench/torch_train_bench.py [threads] [batch] [seq] [runs]
"""

import statistics
import sys
import time

import torch

import hf_checkpoint
from hf_llama_train import TrainReference

threads, batch, seq, runs = (int(a) for a in (sys.argv[1:] + ["2", "4", "512", "3"][len(sys.argv) - 1:])[:4])
torch.set_num_threads(threads)
config = hf_checkpoint.make_config(hidden=768, intermediate=2048, layers=12, heads=12, vocab=32000, eps=1e-5)
state = hf_checkpoint.make_state_dict(config, seed=1)
model = TrainReference(config, state, dtype=torch.float32)
gen = torch.Generator().manual_seed(0)
ids = torch.randint(0, 32000, (batch, seq), generator=gen)
rows = [{"input_ids": r.tolist(), "labels": r.tolist()} for r in ids]
params = sum(p.numel() for p in model.params.values())
train_s, forward_s = [], []
for r in range(runs + 1):
    start = time.perf_counter()
    loss, _, _ = model.micro_batch_loss(rows)
    loss.backward()
    t = time.perf_counter() - start
    for p in model.params.values():
        p.grad = None
    start = time.perf_counter()
    with torch.no_grad():
        model.micro_batch_loss(rows)
    f = time.perf_counter() - start
    if r > 0:
        train_s.append(t)
        forward_s.append(f)
tokens = batch * seq
tps = tokens / statistics.median(train_s)
print(f"torch {torch.__version__}, {threads} threads, batch {batch} x seq {seq}, {params / 1e6:.1f} M params")
print(f"forward+backward: {tps:.1f} tokens/s (median {statistics.median(train_s):.3f} s), "
      f"{6 * params * tps / 1e9:.1f} GFLOP/s")
print(f"forward only:     {tokens / statistics.median(forward_s):.1f} tokens/s")
