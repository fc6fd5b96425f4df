// One decode step for several sequences at once (continuous batching): session i
// evaluates tokens[i] at its own position pos(i). The linear layers run once over all rows
// (matrix–matrix products, the weights read once per step instead of once per sequence);
// RoPE and attention run per row, over that row's session cache. The result equals
// separate Session::eval calls of one token each up to fp32 summation order
// (tests/llama/batch_decode_test.cc).
#pragma once

#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"
#include "llama/model.h"
#include "llama/session.h"

namespace tulu {

class BatchDecoder {
 public:
  // max_rows: most sessions per step (≥ 1); max_positions: the largest session capacity
  // it will see (sizes the RoPE table and the attention scratch). Not thread-safe.
  BatchDecoder(const LlamaModel& model, int max_rows, int max_positions, ThreadPool& pool);

  // Evaluates tokens[i] in sessions[i] (distinct sessions of this model), appending it to
  // that session's cache. Returns logits [sessions.size(), vocab], row i for session i,
  // valid until the next call. Throws tulu::Error (nothing evaluated) when the counts
  // differ or exceed max_rows, a session is repeated, belongs to another model, is full
  // or has a capacity above max_positions, or a token is outside the vocabulary.
  std::span<const float> decode(std::span<Session* const> sessions, std::span<const int> tokens);

 private:
  const LlamaModel& model_;
  ThreadPool& pool_;
  int max_rows_;
  int max_positions_;
  RopeTable rope_;
  std::vector<float> input_norms_, post_norms_, final_norm_;  // fp32 copies of the norms
  std::vector<float> residual_, normed_, queries_, keys_, values_, attended_, projected_, gate_,
      up_, scores_, logits_;
  MatmulScratch scratch_;
};

}  // namespace tulu
