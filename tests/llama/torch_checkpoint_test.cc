// The PyTorch .bin reader against real torch.save output, generated at test time by
// tests/reference/torch_fixtures.py (valid files with their expected bytes, and crafted
// bad files), plus fuzzing of a valid archive.
#include <filesystem>
#include <set>

#include "checkpoint_test_util.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {
namespace {

using testing_util::expect_error;
using testing_util::read_bytes;
using testing_util::ScratchDir;
using testing_util::TestRng;
using testing_util::write_bytes;

class TorchCheckpointTest : public ::testing::Test {
 protected:
  // ctest runs each test in its own process: the fixtures are generated once per version of
  // the generator script into a directory named after its hash, published by an atomic rename.
  static void SetUpTestSuite() {
    const std::string script = std::string(TULU_SOURCE_DIR) + "/tests/reference/torch_fixtures.py";
    const size_t key = std::hash<std::string>{}(read_bytes(script));
    dir_ = (std::filesystem::temp_directory_path() / ("tulu_torch_fixtures_" + std::to_string(key))).string();
    if (std::filesystem::exists(dir_ + "/done")) return;
    const std::string tmp = dir_ + ".tmp." + std::to_string(::getpid());
    std::filesystem::remove_all(tmp);
    const std::string command = "/usr/bin/python3 " + script + " " + tmp;
    if (std::system(command.c_str()) != 0) return;
    write_bytes(tmp + "/done", "");
    std::error_code ec;
    std::filesystem::rename(tmp, dir_, ec);  // fails harmlessly if another process won the race
    std::filesystem::remove_all(tmp, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(dir_ + "/done"))
        << "tests/reference/torch_fixtures.py failed (needs /usr/bin/python3 with torch)";
  }

  static std::string path(const std::string& stem) { return dir_ + "/" + stem + ".bin"; }

  // Reads <stem>.bin and compares every tensor with the bytes PyTorch wrote beside it.
  static void expect_matches_torch(const std::string& stem) {
    TensorStore store;
    read_torch_checkpoint(path(stem), store);
    const std::string expected_dir = dir_ + "/" + stem + ".expected";
    const Json manifest = read_json_file(expected_dir + "/manifest.json");
    EXPECT_EQ(store.size(), manifest.size()) << stem;
    for (const auto& [name, info] : manifest.items()) {
      SCOPED_TRACE(stem + ": " + name);
      ASSERT_TRUE(store.contains(name));
      const TensorView& view = store.get(name).view;
      EXPECT_EQ(std::string(dtype_name(view.dtype)), info["dtype"].get<std::string>());
      EXPECT_EQ(view.shape, info["shape"].get<std::vector<int64_t>>());
      const std::string expected = read_bytes(expected_dir + "/" + name + ".raw");
      ASSERT_EQ(view.nbytes(), expected.size());
      EXPECT_EQ(std::string(static_cast<const char*>(view.data), view.nbytes()), expected);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data) % dtype_size(view.dtype), 0u) << "misaligned view";
    }
  }

  static std::string dir_;
};

std::string TorchCheckpointTest::dir_;

TEST_F(TorchCheckpointTest, MixedDtypesScalarsAndEmptyTensorsMatchTorch) { expect_matches_torch("mixed"); }
TEST_F(TorchCheckpointTest, ViewsSharingOneStorageMatchTorch) { expect_matches_torch("shared"); }
TEST_F(TorchCheckpointTest, NonContiguousTensorsAreGatheredLikeTorch) { expect_matches_torch("strided"); }
TEST_F(TorchCheckpointTest, ModuleStateDictWithMetadataMatchesTorch) { expect_matches_torch("state_dict"); }
TEST_F(TorchCheckpointTest, ParametersMatchTorch) { expect_matches_torch("parameter"); }
TEST_F(TorchCheckpointTest, PickleProtocol4MatchesTorch) { expect_matches_torch("protocol4"); }
TEST_F(TorchCheckpointTest, ManyTensorsUseLongMemoIndices) { expect_matches_torch("many"); }
// Every size and offset in the ZIP64 extra fields, as in shards above 4 GiB.
TEST_F(TorchCheckpointTest, Zip64CentralDirectoryMatchesTorch) { expect_matches_torch("zip64"); }

TEST_F(TorchCheckpointTest, SharedStorageIsViewedNotCopied) {
  TensorStore store;
  read_torch_checkpoint(path("shared"), store);
  const auto* whole = static_cast<const float*>(store.get("whole").view.data);
  EXPECT_EQ(store.get("row0").view.data, whole);
  EXPECT_EQ(store.get("row2").view.data, whole + 2 * 6);
  EXPECT_EQ(store.copied_count(), 0u);
}

TEST_F(TorchCheckpointTest, ForbiddenGlobalsAreRefusedNotExecuted) {
  TensorStore store;
  expect_error([&] { read_torch_checkpoint(path("evil_os_system"), store); },
               {"evil_os_system.bin", "global", "system", "not allowed"});
  expect_error([&] { read_torch_checkpoint(path("evil_eval"), store); }, {"evil_eval.bin", "__builtin__.eval", "not allowed"});
}

TEST_F(TorchCheckpointTest, OpcodesOutsideTheSubsetAreRefused) {
  TensorStore store;
  expect_error([&] { read_torch_checkpoint(path("evil_opcode"), store); },
               {"evil_opcode.bin", "opcode 0x8f", "not allowed"});
}

TEST_F(TorchCheckpointTest, ArchiveProblemsNameTheFileAndEntry) {
  TensorStore store;
  expect_error([&] { read_torch_checkpoint(path("compressed"), store); }, {"compressed.bin", "compressed (method 8)"});
  expect_error([&] { read_torch_checkpoint(path("bad_central_directory"), store); },
               {"bad_central_directory.bin", "central directory"});
  expect_error([&] { read_torch_checkpoint(path("legacy"), store); }, {"legacy.bin", "not a zip archive"});
  expect_error([&] { read_torch_checkpoint(path("missing_storage"), store); },
               {"missing_storage.bin", "tensor 'a.weight'", "data/0", "missing"});
  expect_error([&] { read_torch_checkpoint(path("short_storage"), store); },
               {"short_storage.bin", "tensor 'a.weight'", "12 elements", "8 bytes"});
}

TEST_F(TorchCheckpointTest, ContentsOtherThanATensorDictAreRefused) {
  TensorStore store;
  expect_error([&] { read_torch_checkpoint(path("not_dict"), store); }, {"not_dict.bin", "list", "state dict"});
  expect_error([&] { read_torch_checkpoint(path("non_tensor"), store); },
               {"non_tensor.bin", "'step'", "int", "expected a tensor"});
  expect_error([&] { read_torch_checkpoint(path("double"), store); }, {"double.bin", "torch.DoubleStorage"});
}

TEST_F(TorchCheckpointTest, EveryTruncationIsAnErrorNotACrash) {
  const std::string good = read_bytes(path("mixed"));
  ScratchDir scratch("torch_trunc");
  const std::string cut_path = scratch.file("cut.bin");
  for (size_t cut = 0; cut < good.size(); cut += 1 + cut / 16) {
    write_bytes(cut_path, good.substr(0, cut));
    TensorStore store;
    EXPECT_THROW(read_torch_checkpoint(cut_path, store), Error) << "cut at " << cut;
  }
}

TEST_F(TorchCheckpointTest, RandomByteFlipsNeverCrash) {
  // Each mutated file must either load or raise tulu::Error; ASan/UBSan catch the rest.
  const std::string good = read_bytes(path("mixed"));
  ScratchDir scratch("torch_flip");
  const std::string mutated_path = scratch.file("mutated.bin");
  TestRng rng(12345);
  int errors = 0, loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string bytes = good;
    const size_t flips = 1 + rng.below(4);
    for (size_t f = 0; f < flips; ++f) bytes[rng.below(bytes.size())] = static_cast<char>(rng.next());
    write_bytes(mutated_path, bytes);
    TensorStore store;
    try {
      read_torch_checkpoint(mutated_path, store);
      ++loaded;
      for (const auto& [name, t] : store.tensors()) {
        if (t.view.numel() > 0) (void)to_f32(t.view);  // touch every byte viewed
      }
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors + loaded, 400);
}

}  // namespace
}  // namespace tulu
