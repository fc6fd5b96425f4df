// --precompute-ref FILE: the reference model's summed log-probs of every pair (chosen and
// rejected), computed once before training so that no reference model stays in memory.
//
// File (JSON, doubles written round-trip exact):
//   {"format": "tulu-dpo-reference-logps", "version": 1,
//    "fingerprint": {...what the numbers depend on...},
//    "train": {"chosen": [...], "rejected": [...]}, "eval": {...} (only with --eval-data)}
// Arrays are indexed by the pair's index in its data set (file order after dropped pairs).
// The fingerprint holds the data files (absolute path and size), the truncation lengths, the
// pair counts and the reference model (directory, dimensions and a hash of its fp32 weights),
// so a file is reused only for the same data and reference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace tulu {

struct DpoRefLogps {
  std::vector<double> chosen, rejected;  // [pair index]
};

struct DpoRefCache {
  Json fingerprint;
  DpoRefLogps train;
  std::optional<DpoRefLogps> eval;
};

// 64-bit FNV-1a of the weights' bytes (the reference model's identity in the fingerprint).
uint64_t hash_weights(const std::vector<float>& params);

// Reads path. Returns nullopt when it does not exist. Throws tulu::Error naming the file and
// field when it is not such a file or its arrays are malformed (not numbers, lengths differ).
std::optional<DpoRefCache> read_dpo_ref_cache(const std::string& path);

// The first fingerprint key whose value differs ("" when equal), for the message that says
// why a file is recomputed.
std::string dpo_ref_fingerprint_difference(const Json& saved, const Json& current);

// Writes the file atomically.
void write_dpo_ref_cache(const std::string& path, const DpoRefCache& cache);

}  // namespace tulu
