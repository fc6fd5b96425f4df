#include "core/file_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/error.h"
#include "core/mapped_file.h"

namespace tulu {
namespace {

// This process's scratch directory, removed when the process exits (ctest runs every test
// in its own process, so each would otherwise leave one behind in /tmp).
std::string temp_dir() {
  struct Scratch {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("tulu_file_io_" + std::to_string(::getpid()));
    Scratch() { std::filesystem::create_directories(path); }
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Scratch scratch;
  std::filesystem::create_directories(scratch.path);  // a test may have removed it
  return scratch.path.string();
}

TEST(FileIo, AtomicWriteThenReadAndMap) {
  const std::string path = join_path(temp_dir(), "a.txt");
  write_file_atomic(path, std::string_view("hello world"));
  EXPECT_EQ(read_text_file(path), "hello world");
  auto mapped = MappedFile::open(path);
  ASSERT_EQ(mapped->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(mapped->data()), 11), "hello world");
}

TEST(FileIo, FailedWriterLeavesOldFileAndNoTemporary) {
  const std::string dir = temp_dir();
  const std::string path = join_path(dir, "b.txt");
  write_file_atomic(path, std::string_view("old"));
  EXPECT_THROW(write_file_atomic(path, [](std::ostream& out) {
                 out << "partial";
                 throw std::runtime_error("crash in the middle");
               }),
               std::runtime_error);
  EXPECT_EQ(read_text_file(path), "old");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST(FileIo, ErrorsNameThePath) {
  try {
    read_text_file("/nonexistent/dir/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/config.json"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open("/nonexistent.safetensors"), Error);
  EXPECT_THROW(MappedFile::open(temp_dir()), Error);  // a directory
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/x", std::string_view("x")), Error);
}

TEST(FileIo, EmptyFileMaps) {
  const std::string path = join_path(temp_dir(), "empty");
  write_file_atomic(path, std::string_view(""));
  auto mapped = MappedFile::open(path);
  EXPECT_EQ(mapped->size(), 0u);
}

// --no-mmap: the same bytes, read into private memory in parallel slices (a file large
// enough for two or more slices, with a position-dependent pattern so that a slice read to
// the wrong place shows), and the same errors.
TEST(FileIo, FilesReadIntoMemory) {
  const std::string path = join_path(temp_dir(), "big.bin");
  std::string bytes((size_t{520} << 20) + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); i += 4093) bytes[i] = static_cast<char>(i * 2654435761u >> 24);
  write_file_atomic(path, std::string_view(bytes));
  set_files_in_memory(true);
  auto read = MappedFile::open(path);
  auto empty_path = join_path(temp_dir(), "empty2");
  write_file_atomic(empty_path, std::string_view(""));
  auto empty = MappedFile::open(empty_path);
  EXPECT_THROW(MappedFile::open("/nonexistent.gguf"), Error);
  EXPECT_THROW(MappedFile::open(temp_dir()), Error);
  set_files_in_memory(false);
  EXPECT_TRUE(read->in_memory());
  ASSERT_EQ(read->size(), bytes.size());
  EXPECT_TRUE(std::memcmp(read->data(), bytes.data(), bytes.size()) == 0);
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_FALSE(MappedFile::open(path)->in_memory());
}

// release() gives back the pages inside a range (the repacked weights' sources) and the
// bytes read the same afterwards, mapped or read into memory; a range outside the file is an
// error, and a range with no whole page inside is a no-op.
TEST(FileIo, ReleasedRangesReadTheSame) {
  const std::string path = join_path(temp_dir(), "release.bin");
  std::string bytes(size_t{5} << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 2654435761u >> 24);
  write_file_atomic(path, std::string_view(bytes));
  for (bool in_memory : {false, true}) {
    set_files_in_memory(in_memory);
    auto file = MappedFile::open(path);
    set_files_in_memory(false);
    ASSERT_EQ(file->in_memory(), in_memory);
    file->release(file->data() + 12345, (size_t{3} << 20) + 777);
    file->release(file->data() + 100, 200);
    EXPECT_TRUE(std::memcmp(file->data(), bytes.data(), bytes.size()) == 0) << in_memory;
    EXPECT_THROW(file->release(file->data() + bytes.size() - 10, 20), Error);
  }
}

}  // namespace
}  // namespace tulu
