// Load-time repacking of a model's weights into the layouts the decode kernels read best.
// Today one: every Q4_0 linear weight with rows in whole groups of 16 (all of a Llama's:
// q/k/v/o, gate/up/down, an untied lm_head) becomes Q4_0_R16 (tensor/quant_repack.h), as
// llama.cpp repacks Q4_0 to its 8-row interleaved layout at load on AVX2/AVX-512 CPUs. The
// embedding stays as stored (its rows are looked up one at a time; a tied lm_head shares
// it and stays too).
//
// Memory: the repacked copies go to one buffer with huge pages advised, and the file pages
// they came from are given back (TensorStore::release_file_bytes), so the resident size
// stays about one copy of the weights. The store keeps its views of the file as read (so
// `tulu info` still reports the file's types); the model's LlamaWeights view the copies.
//
// Only where it pays: on CPUs with the AVX-512 VNNI kernels (quant_gemm_available and the
// 512-bit matrix–vector kernel), unless TULU_REPACK=0 is set (which keeps the file's
// layout: for comparisons, and a way out should the copy be unwanted).
#pragma once

#include <cstdint>

#include "llama/model.h"
#include "llama/tensor_store.h"

namespace tulu {

// True when load-time repacking is on for this process (CPU check and TULU_REPACK).
bool weight_repack_enabled();

// Repacks the eligible weights of `weights` (views into `store`) in place of the views;
// returns the bytes repacked (0 when nothing was, or repacking is off). Uses up to the
// hardware's threads for the copy.
uint64_t repack_weights_for_decode(LlamaWeights& weights, TensorStore& store);

}  // namespace tulu
