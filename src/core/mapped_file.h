// Read-only memory map of a whole file. Weights are views into these maps, so a
// MappedFile must outlive every view into it (hold it by shared_ptr).
//
// Two ways to hold the bytes, chosen per process (set_files_in_memory, from the command
// line's --no-mmap, before any model is opened):
//   mapped (default): mmap of the file; loading is instant and the pages are the page
//     cache's, shared with other processes and with the next run.
//   in memory: the file is read into private anonymous memory (populated up front, then
//     made read-only). Loading costs a read of the file, but decoding reads the weights
//     faster: measured on this 2-vCPU VM (1.1B Q8_0, 2 threads), 1.09–1.18× the tokens/s
//     of the mapped file, with 4 KiB pages as with huge pages; the likely cause is that
//     freshly allocated memory is physically contiguous while page-cache pages are
//     scattered, which costs more in the virtual machine's nested page walks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tulu {

// Process-wide policy for MappedFile::open (not thread-safe against concurrent opens: set
// it at start-up).
void set_files_in_memory(bool in_memory);
bool files_in_memory();

// What names one version of a file: a file replaced or rewritten gets another identity.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

class MappedFile {
 public:
  // Throws tulu::Error naming the path if the file cannot be opened, mapped or read
  // (in memory: also when memory runs out, or the file shrinks while it is read).
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // True when the bytes were read into private memory rather than mapped.
  bool in_memory() const { return in_memory_; }
  // The file as it was when opened (stat of the open descriptor).
  const FileIdentity& identity() const { return identity_; }
  // Gives back the memory of the whole pages inside [p, p + n) (a range of this file's
  // bytes that the caller has copied elsewhere and will not read on the hot path again).
  // The bytes stay readable and unchanged: mapped, the pages are dropped and fault back in
  // from the file on the next read; in memory, they are replaced by a mapping of the same
  // bytes of the file (left as they are if the file can no longer be opened).
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool in_memory_ = false;
  FileIdentity identity_;
};

}  // namespace tulu
