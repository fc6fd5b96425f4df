// The repack cache file (llama/repack_cache.h) on synthetic weights: a file of random Q8_0 /
// Q4_0 rows (sizes chosen so that the 4 MiB write pieces cut through 16-row groups and
// tensors) and one copy outside it. Its data region must hold exactly the bytes of
// repack_r16 on every tensor, at a 2 MiB-aligned address; a second call maps it without
// writing; a changed source file, a changed copy, a truncated or overwritten cache file are
// each rebuilt; a directory that cannot be made gives nullopt (the caller's in-memory
// fallback); and the directory follows TULU_CACHE_DIR, XDG_CACHE_HOME, HOME and the switches.
#include "llama/repack_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint_test_util.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace tulu {
namespace {

using testing_util::read_bytes;
using testing_util::ScratchDir;
using testing_util::TestRng;
using testing_util::write_bytes;

struct Shape {
  DType type;
  int64_t rows, cols;
};

// Tensors in the file (A crosses the first 4 MiB piece boundary inside a 16-row group),
// then one that is a copy in memory.
const Shape kInFile[] = {
    {DType::Q8_0, 16 * 130, 2048}, {DType::Q4_0, 48, 4096}, {DType::Q8_0, 16 * 100, 1024}};
const Shape kCopy = {DType::Q4_0, 32, 64};

uint64_t bytes_of(const Shape& s) {
  return static_cast<uint64_t>(s.rows) * static_cast<uint64_t>(s.cols) / kQuantBlock *
         dtype_block_bytes(s.type);
}

std::string random_bytes(size_t n, TestRng& rng) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng.next());
  return out;
}

class RepackCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TestRng rng(7);
    std::string file = random_bytes(96, rng);  // a header's worth before the first tensor
    for (const Shape& s : kInFile) {
      offsets_.push_back(file.size());
      file += random_bytes(bytes_of(s), rng);
      file += random_bytes(32, rng);  // padding between tensors, as in GGUF
    }
    source_bytes_ = file;
    write_bytes(source_path(), file);
    copy_ = random_bytes(bytes_of(kCopy), rng);
    open_source();
  }

  std::string source_path() const { return scratch_.file("model.gguf"); }
  std::string cache_dir() const { return scratch_.file("cache/tulu"); }

  void open_source() {
    source_ = MappedFile::open(source_path());
    views_.clear();
    jobs_.clear();
    total_ = 0;
    for (size_t i = 0; i < std::size(kInFile); ++i)
      views_.push_back(
          {kInFile[i].type, {kInFile[i].rows, kInFile[i].cols}, source_->data() + offsets_[i]});
    views_.push_back({kCopy.type, {kCopy.rows, kCopy.cols}, copy_.data()});
    for (const TensorView& v : views_) {
      jobs_.push_back({&v, total_});
      total_ += v.nbytes();
    }
  }

  std::vector<uint8_t> expected() const {
    std::vector<uint8_t> out(total_);
    for (const RepackJob& job : jobs_)
      repack_r16(job.source->dtype, job.source->data, job.source->dim(0),
                 static_cast<size_t>(job.source->dim(1)) / kQuantBlock,
                 out.data() + job.output_offset);
    return out;
  }

  std::optional<RepackCacheMapping> map() {
    return map_repack_cache(cache_dir(), *source_, jobs_, total_);
  }

  void expect_bytes(const RepackCacheMapping& m) const {
    const std::vector<uint8_t> want = expected();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data) % (uintptr_t{2} << 20), 0u);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), m.data)) << m.path;
  }

  ScratchDir scratch_{"repack_cache"};
  std::vector<size_t> offsets_;
  std::string source_bytes_;
  std::string copy_;
  std::shared_ptr<MappedFile> source_;
  std::vector<TensorView> views_;
  std::vector<RepackJob> jobs_;
  uint64_t total_ = 0;
};

TEST_F(RepackCacheTest, WrittenOnceThenMapped) {
  ASSERT_GT(total_, uint64_t{4} << 20);  // more than one write piece
  auto first = map();
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->built);
  expect_bytes(*first);
  EXPECT_EQ(first->path.rfind(cache_dir() + "/model.gguf.", 0), 0u) << first->path;
  EXPECT_EQ(first->path.substr(first->path.size() - 4), ".r16");
  auto second = map();
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->built);
  EXPECT_EQ(second->path, first->path);
  expect_bytes(*second);
  // One file, no temporary left behind.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(cache_dir())) {
    ++files;
    EXPECT_EQ(entry.path().string(), first->path);
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(RepackCacheTest, ChangedSourceOrCopyIsRebuilt) {
  ASSERT_TRUE(map().has_value());
  copy_[5] = static_cast<char>(copy_[5] ^ 0x40);  // the copy's bytes name it: stale
  auto after_copy = map();
  ASSERT_TRUE(after_copy.has_value());
  EXPECT_TRUE(after_copy->built);
  expect_bytes(*after_copy);

  // The model file rewritten (a new file: another inode, size or time), here with one
  // weight byte changed.
  source_bytes_[offsets_[1] + 7] = static_cast<char>(source_bytes_[offsets_[1] + 7] ^ 1);
  std::filesystem::remove(source_path());
  write_bytes(source_path(), source_bytes_);
  open_source();
  auto after_file = map();
  ASSERT_TRUE(after_file.has_value());
  EXPECT_TRUE(after_file->built);
  expect_bytes(*after_file);
  EXPECT_FALSE(map()->built);
}

TEST_F(RepackCacheTest, DamagedCacheFilesAreRebuilt) {
  const std::string path = map()->path;
  const std::string whole = read_bytes(path);
  const std::vector<std::string> damaged = {
      "",
      whole.substr(0, 10),
      whole.substr(0, whole.size() / 2),
      whole.substr(0, whole.size() - 1),
      "XULUR16" + whole.substr(7),                                      // magic
      whole.substr(0, 30) + "#" + whole.substr(31),                     // key
      whole.substr(0, 8) + std::string(8, '\x7f') + whole.substr(16)};  // key length
  for (size_t i = 0; i < damaged.size(); ++i) {
    write_bytes(path, damaged[i]);
    auto again = map();
    ASSERT_TRUE(again.has_value()) << "case " << i;
    EXPECT_TRUE(again->built) << "case " << i;
    expect_bytes(*again);
  }
}

TEST_F(RepackCacheTest, UnusableDirectoryGivesNothing) {
  write_bytes(scratch_.file("plain-file"), "x");
  const std::string under_file = scratch_.file("plain-file") + "/cache";
  EXPECT_FALSE(map_repack_cache(under_file, *source_, jobs_, total_).has_value());
  EXPECT_FALSE(std::filesystem::exists(under_file));
}

// Sets an environment variable for one scope (unset when value is nullptr).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(RepackCacheDir, FollowsTheEnvironmentAndTheSwitches) {
  ScopedEnv off("TULU_REPACK_CACHE", nullptr);
  {
    ScopedEnv dir("TULU_CACHE_DIR", "/x/tulu-cache");
    ScopedEnv xdg("XDG_CACHE_HOME", "/y");
    EXPECT_EQ(repack_cache_dir(), "/x/tulu-cache");
    ScopedEnv no("TULU_REPACK_CACHE", "0");
    EXPECT_EQ(repack_cache_dir(), "");
  }
  ScopedEnv dir("TULU_CACHE_DIR", nullptr);
  {
    ScopedEnv xdg("XDG_CACHE_HOME", "/y");
    EXPECT_EQ(repack_cache_dir(), "/y/tulu");
  }
  ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  {
    ScopedEnv home("HOME", "/home/u");
    EXPECT_EQ(repack_cache_dir(), "/home/u/.cache/tulu");
    set_repack_cache(false);
    EXPECT_EQ(repack_cache_dir(), "");
    set_repack_cache(true);
  }
  ScopedEnv home("HOME", nullptr);
  EXPECT_EQ(repack_cache_dir(), "");
}

}  // namespace
}  // namespace tulu
