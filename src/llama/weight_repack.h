// Load-time repacking of a model's weights into the layouts the decode kernels read best.
// Every Q4_0 / Q8_0 linear weight with rows in whole groups of 16 (all of a Llama's: q/k/v/o,
// gate/up/down, an untied lm_head) becomes Q4_0_R16 / Q8_0_R16 (tensor/quant_repack.h), as
// llama.cpp repacks Q4_0 to its 8-row interleaved layout at load on AVX2/AVX-512 CPUs. The
// embedding stays as stored (its rows are looked up one at a time; a tied lm_head shares
// it and stays too).
//
// Memory: the repacked weights are read from a cache file made at the first load of the
// model file (llama/repack_cache.h: mapped from the page cache like the model, in huge
// pages), or, when there is no cache (off, unwritable, --no-mmap), copied into one buffer
// with huge pages advised. Either way the file pages they came from are given back
// (TensorStore::release_file_bytes), so the resident size stays about one copy of the
// weights. The store keeps its views of the file as read (so `tulu info` still reports the
// file's types); the model's LlamaWeights view the copies.
//
// Cost: mapping the cache takes tens of milliseconds. Copying into memory costs the fresh
// memory's first touch (measured on this VM, 1.1B model: Q4_0 0.2–1.6 s, Q8_0 0.3–2.5 s,
// slowest after a pause), as does the first load that writes the cache. Paid back by decode
// steps 1.3–1.6× as fast.
//
// Only where it pays: on CPUs with the AVX-512 VNNI kernels (quant_gemm_available and the
// 512-bit matrix–vector kernel), unless turned off by `--no-repack` (set_weight_repack) or
// TULU_REPACK=0, which keep the file's layout: instant loads, and comparisons.
#pragma once

#include <cstdint>
#include <string>

#include "llama/model.h"
#include "llama/tensor_store.h"

namespace tulu {

// Process-wide switch (default on; set it before loading a model).
void set_weight_repack(bool on);
// True when load-time repacking is on for this process: the switch, TULU_REPACK and the CPU.
bool weight_repack_enabled();

struct WeightRepack {
  uint64_t bytes = 0;        // repacked (0 when nothing was, or repacking is off)
  std::string cache;         // the cache file the weights are mapped from; "" in memory
  bool cache_built = false;  // this load wrote that file
};

// Repacks the eligible weights of `weights` (views into `store`) in place of the views:
// from or into the cache file (llama/repack_cache.h) when all of them lie in one mapped
// file and caching is on, else into memory. Uses up to the hardware's threads.
WeightRepack repack_weights_for_decode(LlamaWeights& weights, TensorStore& store);

}  // namespace tulu
