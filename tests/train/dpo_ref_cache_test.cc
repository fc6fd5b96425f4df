// dpo_ref_cache: the --precompute-ref file round-trips every double bit for bit, a missing
// file reads as absent, fingerprint differences are named, and malformed files are refused
// naming the file and field.
#include "train/dpo_ref_cache.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {
namespace {

namespace fs = std::filesystem;

// A file in this process's scratch directory, which is removed when the process exits
// (ctest runs every test in its own process, so each would otherwise leave one in /tmp).
std::string temp_path(const std::string& name) {
  struct Scratch {
    fs::path path =
        fs::temp_directory_path() / ("tulu_dpo_ref_cache_" + std::to_string(::getpid()));
    ~Scratch() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  };
  static const Scratch scratch;
  fs::create_directories(scratch.path);
  return (scratch.path / name).string();
}

TEST(DpoRefCache, RoundTripsExactly) {
  DpoRefCache cache;
  cache.fingerprint = Json{{"data", "/x/p.jsonl"}, {"pairs", 3}};
  cache.train.chosen = {-1.0 / 3.0, -123.456789012345678, -1e-300};
  cache.train.rejected = {-std::nextafter(2.0, 3.0), -0.0, -5e10};
  cache.eval = DpoRefLogps{{-0.1}, {-0.2}};
  const std::string path = temp_path("roundtrip.json");
  write_dpo_ref_cache(path, cache);
  const std::optional<DpoRefCache> read = read_dpo_ref_cache(path);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->fingerprint, cache.fingerprint);
  EXPECT_EQ(read->train.chosen, cache.train.chosen);
  EXPECT_EQ(read->train.rejected, cache.train.rejected);
  ASSERT_TRUE(read->eval.has_value());
  EXPECT_EQ(read->eval->chosen, cache.eval->chosen);
  EXPECT_EQ(dpo_ref_fingerprint_difference(read->fingerprint, cache.fingerprint), "");
  EXPECT_NE(
      dpo_ref_fingerprint_difference(read->fingerprint, Json{{"data", "/x/p.jsonl"}, {"pairs", 4}})
          .find("pairs (3 then, 4 now)"),
      std::string::npos);
  EXPECT_FALSE(read_dpo_ref_cache(temp_path("missing.json")).has_value());
}

TEST(DpoRefCache, RefusesMalformedFiles) {
  const std::string path = temp_path("bad.json");
  const auto expect_error = [&](const std::string& text, const std::string& needle) {
    write_file_atomic(path, text);
    try {
      read_dpo_ref_cache(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  };
  const std::string head = R"({"format": "tulu-dpo-reference-logps", "version": 1, )";
  expect_error("{oops", "--precompute-ref");
  expect_error(R"({"format": "other"})", "format");
  expect_error(R"({"format": "tulu-dpo-reference-logps", "version": 2})", "version");
  expect_error(head + R"("train": {"chosen": [], "rejected": []}})", "fingerprint");
  expect_error(head + R"("fingerprint": {}})", "train");
  expect_error(head + R"("fingerprint": {}, "train": {"chosen": [1, "x"], "rejected": [1, 2]}})",
               "train.chosen[1]");
  expect_error(head + R"("fingerprint": {}, "train": {"chosen": [1], "rejected": [1, 2]}})",
               "1 chosen but 2 rejected");
  expect_error(head + R"("fingerprint": {}, "train": {"chosen": [1]}})", "train.rejected");
}

TEST(DpoRefCache, WeightHashSeesEveryBit) {
  std::vector<float> a = {1.0f, 2.0f, 3.0f};
  std::vector<float> b = a;
  EXPECT_EQ(hash_weights(a), hash_weights(b));
  b[2] = std::nextafter(3.0f, 4.0f);
  EXPECT_NE(hash_weights(a), hash_weights(b));
  std::vector<float> swapped = {2.0f, 1.0f, 3.0f};
  EXPECT_NE(hash_weights(a), hash_weights(swapped));
}

}  // namespace
}  // namespace tulu
