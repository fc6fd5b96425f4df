// --kv-type: the element type of the KV cache of every Session a command builds (see
// llama/session.h's KvType). One definition for generate, chat, serve, bench, logits and
// eval prefs, so that the help text and the error read the same everywhere.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "llama/session.h"

namespace tulu::cli {

struct KvTypeOption {
  std::string name = "f32";

  void add_to(CLI::App& app) {
    app.add_option("--kv-type", name,
                   "KV cache element type: f32 (exact) or f16 (keys/values rounded to IEEE half "
                   "as llama.cpp's default cache; half the memory)")
        ->capture_default_str();
  }

  // The parsed type; tulu::Error naming the flag and the value otherwise.
  KvType resolve() const {
    const std::optional<KvType> type = kv_type_from_name(name);
    TULU_CHECK(type.has_value(), "--kv-type: expected f32 or f16, got '", name, "'");
    return *type;
  }
};

}  // namespace tulu::cli
