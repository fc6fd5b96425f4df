// One decode step for several sequences at once (continuous batching): session i
// evaluates tokens[i] at its own position pos(i). It runs Session's layer stack
// (Session::forward) with one row per session: the linear layers once over all rows (the
// few-row kernel of matvec_multi.h reads each weight row once per step instead of once per
// sequence), RoPE and cache writes per row, attention over every (row, head) pair at once
// on the pool (attention_rows.h), each row over its own session's cache (F32 or F16: the
// sessions of one step may mix KV types). The result equals
// separate Session::eval calls of one token each up to fp32 summation order
// (tests/llama/batch_decode_test.cc).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
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
  std::shared_ptr<Session::Buffers> buffers_;  // Session::forward's workspaces
  std::vector<Session::RowRun> runs_;          // one per session of the current step
  std::vector<float> logits_;                  // [max_rows, vocab]
};

}  // namespace tulu
