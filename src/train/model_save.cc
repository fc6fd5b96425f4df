// save_hf_model: a Hugging Face model directory from fp32 master weights (see
// train_checkpoint.h for the layout).
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "llama/checkpoint.h"
#include "tensor/half.h"
#include "train/train_checkpoint.h"

namespace tulu {

namespace {

// Files copied from the source model directory when present: the tokenizer (both formats
// and its configs) and the generation defaults.
constexpr const char* kCopiedFiles[] = {"tokenizer.json",        "tokenizer.model",
                                        "tokenizer_config.json", "special_tokens_map.json",
                                        "added_tokens.json",     "generation_config.json"};

std::string torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "float32";
    case DType::BF16:
      return "bfloat16";
    case DType::F16:
      return "float16";
    default:
      fail("cannot save a ", dtype_name(dtype), " tensor (only F32, BF16, F16)");
  }
}

void check_layout_matches(const LlamaConfig& config, const ParamLayout& layout) {
  const std::vector<ParamSpec> specs = llama_param_specs(config);
  TULU_CHECK(specs.size() == layout.entries().size(), "save: the parameter layout has ",
             layout.entries().size(), " tensors, the config implies ", specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const ParamEntry& e = layout.entries()[i];
    TULU_CHECK(e.name == specs[i].name && e.shape == specs[i].shape, "save: parameter ", i, " is '",
               e.name, "' ", shape_to_string(e.shape), ", the config implies '", specs[i].name,
               "' ", shape_to_string(specs[i].shape));
  }
}

// An earlier save with another shard count would leave model.safetensors.index.json, which
// loaders prefer over model.safetensors: remove it and the shards it names.
void remove_stale_shards(const std::string& dir) {
  const std::string index_path = join_path(dir, "model.safetensors.index.json");
  if (!file_exists(index_path)) return;
  const Json index = read_json_file(index_path);
  std::remove(index_path.c_str());
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    return;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) continue;
    const std::string shard = file.get<std::string>();
    // Only plain file names inside dir.
    if (shard.find('/') != std::string::npos || shard == "model.safetensors") continue;
    std::remove(join_path(dir, shard).c_str());
  }
}

void fill_stored(const float* src, size_t n, DType dtype, void* out) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(out, src, n * sizeof(float));
      return;
    case DType::BF16: {
      auto* dst = static_cast<uint16_t*>(out);
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::F16: {
      auto* dst = static_cast<uint16_t*>(out);
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
      return;
    }
    default:
      fail("cannot save a ", dtype_name(dtype), " tensor (only F32, BF16, F16)");
  }
}

}  // namespace

void save_hf_model(const std::string& dir, const LlamaConfig& config, const ParamLayout& layout,
                   const float* params, const std::string& source_model_dir) {
  check_layout_matches(config, layout);
  for (const ParamEntry& e : layout.entries())
    torch_dtype_name(e.stored_dtype);  // F32/BF16/F16 only
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TULU_CHECK(!ec && is_directory(dir), "cannot create output directory '", dir,
             "': ", ec.message());

  // transformers records the dtype of the first floating-point parameter (the embedding).
  LlamaConfig saved = config;
  saved.torch_dtype = torch_dtype_name(layout.entries().front().stored_dtype);
  write_file_atomic(join_path(dir, "config.json"), llama_config_to_json(saved).dump(2) + "\n");

  remove_stale_shards(dir);
  std::vector<TensorSpecToWrite> specs;
  for (const ParamEntry& e : layout.entries()) specs.push_back({e.name, e.stored_dtype, e.shape});
  write_safetensors_streamed(join_path(dir, "model.safetensors"), specs, [&](size_t i, void* out) {
    const ParamEntry& e = layout.entries()[i];
    fill_stored(params + e.offset, e.numel, e.stored_dtype, out);
  });

  if (source_model_dir.empty() || !is_directory(source_model_dir)) return;
  std::error_code same_ec;
  if (std::filesystem::equivalent(source_model_dir, dir, same_ec)) return;
  for (const char* name : kCopiedFiles) {
    const std::string from = join_path(source_model_dir, name);
    if (!file_exists(from)) continue;
    write_file_atomic(join_path(dir, name), read_text_file(from));
  }
}

}  // namespace tulu
