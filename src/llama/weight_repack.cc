#include "llama/weight_repack.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/quant_gemm_vnni.h"
#include "kernels/quant_matvec.h"
#include "llama/repack_cache.h"
#include "tensor/quant_repack.h"

namespace tulu {

namespace {

// The views a decode step multiplies by (never the embedding; lm_head only when untied).
std::vector<TensorView*> linear_weights(LlamaWeights& w) {
  std::vector<TensorView*> views;
  for (LayerWeights& layer : w.layers)
    for (TensorView* v : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj,
                          &layer.gate_proj, &layer.up_proj, &layer.down_proj})
      views.push_back(v);
  if (w.lm_head.data != w.embed_tokens.data) views.push_back(&w.lm_head);
  return views;
}

bool repackable(const TensorView& v) {
  return (v.dtype == DType::Q4_0 || v.dtype == DType::Q8_0) && v.shape.size() == 2 &&
         rows16_repackable(v.dim(0), v.dim(1));
}

std::atomic<bool> g_repack{true};  // --no-repack clears it

}  // namespace

void set_weight_repack(bool on) {
  g_repack.store(on);
}

bool weight_repack_enabled() {
  if (!g_repack.load()) return false;
  const char* env = std::getenv("TULU_REPACK");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  return quant_gemm_available() && quant_matvec_available();
}

namespace {

// Repacks into fresh memory; each copy also gives its source pages back, so the resident
// size never holds much more than one copy. The tensors split over the hardware's threads.
const uint8_t* repack_in_memory(std::span<const RepackJob> jobs, uint64_t total,
                                TensorStore& store) {
  auto* buffer = static_cast<uint8_t*>(store.allocate_pages(total));
  const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, jobs.size());
  run_on_threads(threads, [&](size_t t) {
    for (size_t i = t; i < jobs.size(); i += threads) {
      const TensorView& v = *jobs[i].source;
      const auto blocks = static_cast<size_t>(v.dim(1)) / kQuantBlock;
      repack_r16(v.dtype, v.data, v.dim(0), blocks, buffer + jobs[i].output_offset);
      store.release_file_bytes(v.data, v.nbytes());
    }
  });
  return buffer;
}

}  // namespace

WeightRepack repack_weights_for_decode(LlamaWeights& weights, TensorStore& store) {
  WeightRepack result;
  if (!weight_repack_enabled()) return result;
  std::vector<TensorView*> todo;
  std::vector<RepackJob> jobs;
  uint64_t total = 0;
  for (TensorView* v : linear_weights(weights))
    if (repackable(*v)) {
      todo.push_back(v);
      jobs.push_back({v, total});  // sizes are multiples of 288 or 544 bytes: alignment kept
      total += v->nbytes();
    }
  if (todo.empty()) return result;
  const uint8_t* data = nullptr;
  const std::string dir = repack_cache_dir();
  const MappedFile* source = dir.empty() ? nullptr : store.sole_file();
  if (source != nullptr && !source->in_memory()) {
    if (auto cached = map_repack_cache(dir, *source, jobs, total)) {
      data = cached->data;
      store.keep_alive_memory(cached->keep_alive);
      result.cache = cached->path;
      result.cache_built = cached->built;
      // Building read the sources; a hit never touched them.
      if (cached->built)
        for (const RepackJob& job : jobs)
          store.release_file_bytes(job.source->data, job.source->nbytes());
    }
  }
  if (data == nullptr) data = repack_in_memory(jobs, total, store);
  for (size_t i = 0; i < todo.size(); ++i) {
    todo[i]->dtype = interleaved_dtype(todo[i]->dtype);
    todo[i]->data = data + jobs[i].output_offset;
  }
  result.bytes = total;
  return result;
}

}  // namespace tulu
