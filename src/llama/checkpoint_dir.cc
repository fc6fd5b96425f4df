// Finding and loading the weight files of a Hugging Face model directory.
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {

namespace {

using ReadFunction = void (*)(const std::string&, TensorStore&);

// A shard name from an index: a file in the directory, never a path that escapes it.
void check_shard_name(const std::string& name, const std::string& index_path) {
  TULU_CHECK(!name.empty() && name.front() != '/' && name.find("..") == std::string::npos, index_path,
             ": shard file name '", name, "' is not a plain file name in the model directory");
}

// Reads an HF index ({"metadata": {...}, "weight_map": {tensor: shard file}}), every shard it
// names, and checks that each tensor in the map was found in the shard the map names.
// Returns the number of shards.
size_t load_sharded(const std::string& dir, const std::string& index_name, ReadFunction read, TensorStore& store) {
  const std::string index_path = join_path(dir, index_name);
  const Json index = read_json_file(index_path);
  TULU_CHECK(index.is_object(), index_path, ": expected a JSON object");
  TULU_CHECK(index.contains("weight_map") && index.at("weight_map").is_object(), index_path,
             ": missing object 'weight_map'");
  const Json& weight_map = index.at("weight_map");
  TULU_CHECK(!weight_map.empty(), index_path, ": 'weight_map' is empty");

  std::set<std::string> shards;
  for (const auto& [tensor, file] : weight_map.items()) {
    TULU_CHECK(file.is_string(), index_path, ": weight_map['", tensor, "'] is not a file name: ", json_preview(file));
    const std::string name = file.get<std::string>();
    check_shard_name(name, index_path);
    shards.insert(name);
  }
  for (const auto& shard : shards) {
    const std::string shard_path = join_path(dir, shard);
    TULU_CHECK(file_exists(shard_path), index_path, ": names shard '", shard, "', which is missing from ", dir);
  }
  for (const auto& shard : shards) read(join_path(dir, shard), store);

  for (const auto& [tensor, file] : weight_map.items()) {
    const std::string expected = join_path(dir, file.get<std::string>());
    TULU_CHECK(store.contains(tensor), index_path, ": tensor '", tensor, "' is listed in '", file.get<std::string>(),
               "' but that file does not contain it");
    const std::string& actual = store.get(tensor).file;
    TULU_CHECK(actual == expected, index_path, ": tensor '", tensor, "' is listed in '", expected,
               "' but was found in '", actual, "'");
  }
  return shards.size();
}

std::string describe(const std::string& kind, size_t shards) {
  return shards == 1 ? kind + " (1 file)" : str_cat(kind, " (", shards, " shards)");
}

}  // namespace

TensorStore load_checkpoint_dir(const std::string& dir, std::string* format) {
  TULU_CHECK(is_directory(dir), "model directory '", dir, "' does not exist or is not a directory");
  TensorStore store;
  std::string description;
  if (file_exists(join_path(dir, "model.safetensors.index.json"))) {
    description = describe("safetensors", load_sharded(dir, "model.safetensors.index.json", read_safetensors, store));
  } else if (file_exists(join_path(dir, "model.safetensors"))) {
    read_safetensors(join_path(dir, "model.safetensors"), store);
    description = describe("safetensors", 1);
  } else if (file_exists(join_path(dir, "pytorch_model.bin.index.json"))) {
    description = describe("pytorch", load_sharded(dir, "pytorch_model.bin.index.json", read_torch_checkpoint, store));
  } else if (file_exists(join_path(dir, "pytorch_model.bin"))) {
    read_torch_checkpoint(join_path(dir, "pytorch_model.bin"), store);
    description = describe("pytorch", 1);
  } else {
    fail(dir, ": no weights found (expected model.safetensors, model.safetensors.index.json, "
              "pytorch_model.bin or pytorch_model.bin.index.json)");
  }
  if (format != nullptr) *format = description;
  return store;
}

}  // namespace tulu
