// safetensors reader and writer: files are built byte by byte here (independently of the
// writer) to test both valid reading and every refusal; sharded directories through
// load_checkpoint_dir; fuzzing by truncation and byte flips.
#include <cstring>

#include "checkpoint_test_util.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"
#include "tensor/half.h"

namespace tulu {
namespace {

using testing_util::expect_error;
using testing_util::read_bytes;
using testing_util::ScratchDir;
using testing_util::TestRng;
using testing_util::write_bytes;

// header_json as given (no padding unless asked), then data.
std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out + header_json + data;
}

std::string float_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)};
}

std::string u16_bytes(const std::vector<uint16_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(uint16_t)};
}

class SafetensorsTest : public ::testing::Test {
 protected:
  ScratchDir dir_{"safetensors"};
  std::string write(const std::string& name, const std::string& bytes) {
    write_bytes(dir_.file(name), bytes);
    return dir_.file(name);
  }
  // A file with one tensor "t" described by `entry` (the JSON object) and `data`.
  std::string one_tensor(const std::string& entry, const std::string& data) {
    return write("one.safetensors", safetensors_bytes(R"({"t":)" + entry + "}", data));
  }
  void expect_read_error(const std::string& path, std::initializer_list<std::string> fragments) {
    TensorStore store;
    expect_error([&] { read_safetensors(path, store); }, fragments);
  }
};

TEST_F(SafetensorsTest, ReadsEveryDtypeAsAViewWithTheStoredValues) {
  const std::vector<float> a = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
  const std::vector<uint16_t> b = {f32_to_f16(0.5f), f32_to_f16(-65504.0f), f32_to_f16(3.140625f)};
  const std::vector<uint16_t> c = {f32_to_bf16(2.0f), f32_to_bf16(-1.0e20f)};
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},)"
      R"("c":{"dtype":"BF16","shape":[1,2],"data_offsets":[30,34]}})";
  // Pad the header to a multiple of 8 so that the data is aligned, as writers do.
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  const std::string path = write("ok.safetensors", safetensors_bytes(padded, float_bytes(a) + u16_bytes(b) + u16_bytes(c)));
  TensorStore store;
  read_safetensors(path, store);
  ASSERT_EQ(store.size(), 3u);
  EXPECT_EQ(store.get("a").view.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(store.get("a").file, path);
  EXPECT_EQ(to_f32(store.get("a").view), a);
  EXPECT_EQ(store.get("b").view.dtype, DType::F16);
  EXPECT_EQ(std::vector<uint16_t>(store.get("b").view.u16(), store.get("b").view.u16() + 3), b);
  EXPECT_EQ(store.get("c").view.dtype, DType::BF16);
  EXPECT_EQ(to_f32(store.get("c").view), (std::vector<float>{2.0f, bf16_to_f32(c[1])}));
  EXPECT_EQ(store.copied_count(), 0u);  // aligned: views into the map, no copies
}

TEST_F(SafetensorsTest, MisalignedFloatDataIsCopiedNotViewed) {
  // Header of 8·k + 2 bytes: the F32 data starts 2 bytes off a 4-byte boundary.
  std::string header = R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  while (header.size() % 8 != 2) header += ' ';
  const std::vector<float> values = {1.0f, -7.5f, 42.0f};
  const std::string path = write("mis.safetensors", safetensors_bytes(header, float_bytes(values)));
  TensorStore store;
  read_safetensors(path, store);
  EXPECT_EQ(store.copied_count(), 1u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(store.get("t").view.data) % 4, 0u);
  EXPECT_EQ(to_f32(store.get("t").view), values);
}

TEST_F(SafetensorsTest, WriterOutputReadsBackWithPaddedHeaderAndMetadata) {
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> h = {f32_to_bf16(1.5f), f32_to_bf16(-3.0f), f32_to_bf16(0.25f)};
  const std::string path = dir_.file("written.safetensors");
  write_safetensors(path, {{"w", DType::F32, {2, 3}, w.data()}, {"h", DType::BF16, {3}, h.data()}});
  const std::string bytes = read_bytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  const Json header = parse_json(bytes.substr(8, header_len), "header");
  EXPECT_EQ(header["__metadata__"]["format"], "pt");  // transformers refuses files without it
  EXPECT_EQ(header["w"]["data_offsets"], Json::array({0, 24}));
  EXPECT_EQ(header["h"]["data_offsets"], Json::array({24, 30}));
  EXPECT_EQ(bytes.size(), 8 + header_len + 30);
  TensorStore store;
  read_safetensors(path, store);
  EXPECT_EQ(to_f32(store.get("w").view), w);
  EXPECT_EQ(std::vector<uint16_t>(store.get("h").view.u16(), store.get("h").view.u16() + 3), h);
  EXPECT_FALSE(file_exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST_F(SafetensorsTest, ShortFilesAndBadHeadersAreRefused) {
  expect_read_error(write("empty.safetensors", ""), {"empty.safetensors", "too short"});
  expect_read_error(write("five.safetensors", "abcde"), {"five.safetensors", "too short"});
  std::string huge(8, '\xff');
  expect_read_error(write("huge.safetensors", huge + "{}"), {"huge.safetensors", "exceeds the file size"});
  expect_read_error(write("notjson.safetensors", safetensors_bytes("{not json", "")),
                    {"notjson.safetensors", "invalid JSON"});
  expect_read_error(write("array.safetensors", safetensors_bytes("[1,2]", "")), {"array.safetensors", "not a JSON object"});
  expect_read_error(one_tensor("3", ""), {"one.safetensors", "tensor 't'", "expected an object"});
}

TEST_F(SafetensorsTest, UnsupportedDtypesNameTheTensorAndDtype) {
  for (const std::string dtype : {"I64", "F64", "U8", "BOOL", "F8_E4M3", "f32", ""}) {
    SCOPED_TRACE(dtype);
    expect_read_error(one_tensor(R"({"dtype":")" + dtype + R"(","shape":[2],"data_offsets":[0,8]})", std::string(8, 0)),
                      {"one.safetensors", "tensor 't'", "dtype " + dtype, "not supported"});
  }
  expect_read_error(one_tensor(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})", std::string(8, 0)),
                    {"tensor 't'", "dtype"});
}

TEST_F(SafetensorsTest, ShapeAndOffsetsMustAgree) {
  const std::string data(24, 0);
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", data),
                    {"tensor 't'", "shape [2, 3]", "24 bytes", "span 20 bytes"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,48]})", data),
                    {"tensor 't'", "past the end", "24 bytes"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", data),
                    {"tensor 't'", "end before they begin"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", data),
                    {"tensor 't'", "negative"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", data),
                    {"tensor 't'", "negative"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", data),
                    {"tensor 't'", "expected a non-negative integer"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", data),
                    {"tensor 't'", "data_offsets"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":"x","data_offsets":[0,4]})", data), {"tensor 't'", "shape"});
}

TEST_F(SafetensorsTest, HugeValuesDoNotOverflow) {
  const std::string data(16, 0);
  // 2^32 · 2^32 elements overflows 64 bits; so does 2^62 elements × 4 bytes.
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]})", data),
                    {"tensor 't'", "overflows"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]})", data),
                    {"tensor 't'", "overflows"});
  // Offsets near 2^64: end - begin would wrap if computed carelessly.
  expect_read_error(
      one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})", data),
      {"tensor 't'", "past the end"});
  expect_read_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,1e300]})", data),
                    {"tensor 't'", "non-negative integer"});
}

TEST_F(SafetensorsTest, OverlappingTensorsAreRefused) {
  const std::string path = write(
      "overlap.safetensors",
      safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::string(12, 0)));
  expect_read_error(path, {"overlap.safetensors", "'x'", "'y'", "overlap"});
}

TEST_F(SafetensorsTest, ZeroSizedTensorsAreAccepted) {
  const std::string path = write("zero.safetensors",
                                 safetensors_bytes(R"({"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", ""));
  TensorStore store;
  read_safetensors(path, store);
  EXPECT_EQ(store.get("z").view.numel(), 0);
}

TEST_F(SafetensorsTest, TruncationAtEveryPointIsAnError) {
  const std::vector<float> w(64, 1.25f);
  const std::string path = dir_.file("full.safetensors");
  write_safetensors(path, {{"w", DType::F32, {8, 8}, w.data()}, {"v", DType::F32, {4}, w.data()}});
  const std::string good = read_bytes(path);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    const std::string cut_path = write("cut.safetensors", good.substr(0, cut));
    TensorStore store;
    EXPECT_THROW(read_safetensors(cut_path, store), Error) << "cut at " << cut;
  }
}

TEST_F(SafetensorsTest, RandomByteFlipsNeverCrash) {
  const std::vector<float> w(64, 1.25f);
  const std::string path = dir_.file("fuzz.safetensors");
  write_safetensors(path, {{"w", DType::F32, {8, 8}, w.data()}, {"v", DType::BF16, {6}, w.data()}});
  const std::string good = read_bytes(path);
  TestRng rng(99);
  int outcomes = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    std::string bytes = good;
    // Flip within the header most of the time: that is where the parsing is.
    const size_t span = trial % 4 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 120);
    for (size_t f = 0, n = 1 + rng.below(3); f < n; ++f) bytes[rng.below(span)] = static_cast<char>(rng.next());
    const std::string mutated = write("mutated.safetensors", bytes);
    TensorStore store;
    try {
      read_safetensors(mutated, store);
      for (const auto& [name, t] : store.tensors()) {
        if (t.view.numel() > 0) (void)to_f32(t.view);
      }
    } catch (const Error&) {
    }
    ++outcomes;
  }
  EXPECT_EQ(outcomes, 1000);
}

// --- directories --------------------------------------------------------------------

class CheckpointDirTest : public SafetensorsTest {
 protected:
  void shard(const std::string& name, const std::string& tensor, float value) {
    const std::vector<float> v = {value, value};
    write_safetensors(dir_.file(name), {{tensor, DType::F32, {2}, v.data()}});
  }
};

TEST_F(CheckpointDirTest, LoadsAShardedIndex) {
  shard("model-00001-of-00002.safetensors", "a", 1.0f);
  shard("model-00002-of-00002.safetensors", "b", 2.0f);
  write_bytes(dir_.file("model.safetensors.index.json"),
              R"({"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
              R"("b":"model-00002-of-00002.safetensors"}})");
  std::string format;
  TensorStore store = load_checkpoint_dir(dir_.path(), &format);
  EXPECT_EQ(format, "safetensors (2 shards)");
  EXPECT_EQ(to_f32(store.get("b").view), (std::vector<float>{2.0f, 2.0f}));
  EXPECT_EQ(store.get("b").file, dir_.file("model-00002-of-00002.safetensors"));
}

TEST_F(CheckpointDirTest, PrefersSafetensorsOverPytorchFiles) {
  shard("model.safetensors", "a", 1.0f);
  write_bytes(dir_.file("pytorch_model.bin"), "not even a zip");
  std::string format;
  TensorStore store = load_checkpoint_dir(dir_.path(), &format);
  EXPECT_EQ(format, "safetensors (1 file)");
}

TEST_F(CheckpointDirTest, IndexProblemsNameTheIndexAndShard) {
  shard("s1.safetensors", "a", 1.0f);
  shard("s2.safetensors", "a", 2.0f);
  const std::string index = dir_.file("model.safetensors.index.json");
  write_bytes(index, R"({"weight_map":{"a":"s1.safetensors","b":"missing.safetensors"}})");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"model.safetensors.index.json", "missing.safetensors"});
  // The same tensor in two shards.
  write_bytes(index, R"({"weight_map":{"a":"s1.safetensors","x":"s2.safetensors"}})");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"tensor 'a'", "twice", "s1.safetensors", "s2.safetensors"});
  // The map names a tensor its shard does not hold.
  write_bytes(index, R"({"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}})");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"tensor 'zz'", "s1.safetensors", "does not contain"});
  write_bytes(index, R"({"weight_map":{"a":"../s1.safetensors"}})");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"not a plain file name"});
  write_bytes(index, R"({"metadata":{}})");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"model.safetensors.index.json", "weight_map"});
  write_bytes(index, R"({"weight_map":{"a":"s1.safetensors")");
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {"model.safetensors.index.json", "invalid JSON"});
}

TEST_F(CheckpointDirTest, EmptyOrMissingDirectoriesAreClearErrors) {
  expect_error([&] { load_checkpoint_dir(dir_.path()); }, {dir_.path(), "no weights found"});
  expect_error([&] { load_checkpoint_dir(dir_.file("nope")); }, {"nope", "does not exist"});
}

TEST_F(CheckpointDirTest, ShardedWriterSplitsIntoNonEmptyShardsWithAnHfIndex) {
  std::vector<TensorSpecToWrite> specs;
  for (int i = 0; i < 7; ++i) specs.push_back({"t" + std::to_string(i), DType::F32, {i + 1}});
  auto fill = [&](size_t i, void* out) {
    for (size_t k = 0; k <= i; ++k) static_cast<float*>(out)[k] = static_cast<float>(i * 100 + k);
  };
  const auto files = write_safetensors_checkpoint(dir_.path(), specs, fill, 3);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], "model-00001-of-00003.safetensors");
  EXPECT_EQ(files[3], "model.safetensors.index.json");
  const Json index = read_json_file(dir_.file("model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 4 * (1 + 2 + 3 + 4 + 5 + 6 + 7));
  EXPECT_EQ(index["weight_map"].size(), 7u);
  std::string format;
  TensorStore store = load_checkpoint_dir(dir_.path(), &format);
  EXPECT_EQ(format, "safetensors (3 shards)");
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::vector<float> v = to_f32(store.get(specs[i].name).view);
    ASSERT_EQ(v.size(), i + 1);
    for (size_t k = 0; k <= i; ++k) EXPECT_EQ(v[k], static_cast<float>(i * 100 + k));
  }
  expect_error([&] { write_safetensors_checkpoint(dir_.path(), specs, fill, 8); }, {"7 tensors", "8 shards"});
}

}  // namespace
}  // namespace tulu
