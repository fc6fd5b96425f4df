#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "core/error.h"

namespace tulu {

namespace {

std::atomic<bool> g_files_in_memory{false};

// Reads bytes [begin, end) of fd to dst + begin with pread (EINTR retried); throws naming
// `path` on an error or a file that ends early.
void read_range(int fd, const std::string& path, uint8_t* dst, size_t begin, size_t end) {
  constexpr size_t kChunk = size_t{64} << 20;  // bounded reads: EINTR retries stay cheap
  for (size_t done = begin; done < end;) {
    const ssize_t n = ::pread(fd, dst + done, std::min(kChunk, end - done),
                              static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read '", path, "' at byte ", done, ": ", std::strerror(errno));
    if (n == 0) fail("cannot read '", path, "': it ended at byte ", done, " of ", end);
    done += static_cast<size_t>(n);
  }
}

// The whole file into dst (size bytes), in up to 4 parallel slices: the copy out of the page
// cache and the first touch of each new page (zeroing, page-table set-up) are per-core work,
// so two threads read a warm 4.4 GB file in about half the time of one.
void read_whole_file(int fd, const std::string& path, uint8_t* dst, size_t size) {
  constexpr size_t kMinSlice = size_t{256} << 20;
  const size_t hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t slices = std::clamp<size_t>(size / kMinSlice, 1, std::min<size_t>(4, hardware));
  const size_t slice = (size + slices - 1) / slices;
  std::vector<std::exception_ptr> errors(slices);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < slices; ++i)
    threads.emplace_back([&, i] {
      try {
        read_range(fd, path, dst, i * slice, std::min(size, (i + 1) * slice));
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  try {
    read_range(fd, path, dst, 0, std::min(size, slice));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

void set_files_in_memory(bool in_memory) { g_files_in_memory.store(in_memory); }
bool files_in_memory() { return g_files_in_memory.load(); }

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot stat '", path, "': ", std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("'", path, "' is a directory, expected a file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  file->identity_ = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size),
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  if (file->size_ > 0 && files_in_memory()) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("cannot allocate ", file->size_, " bytes to read '", path, "' into: ",
           std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);  // owned from here (unmapped on a throw)
    file->in_memory_ = true;
    try {
      read_whole_file(fd, path, static_cast<uint8_t*>(p), file->size_);
    } catch (...) {
      ::close(fd);
      throw;
    }
    // Weights are read-only: a stray write faults here as it would in the file mapping.
    ::mprotect(p, file->size_, PROT_READ);
  } else if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("cannot mmap '", path, "': ", std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return file;
}

void MappedFile::release(const void* p, size_t n) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(data_);
  const auto begin = reinterpret_cast<uintptr_t>(p);
  TULU_CHECK(data_ != nullptr && begin >= base && n <= size_ && begin - base <= size_ - n,
             "MappedFile::release: the range is not inside '", path_, "'");
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + n) / page * page;
  if (first >= last) return;
  auto* start = reinterpret_cast<void*>(first);
  const size_t length = last - first;
  if (!in_memory_) {
    (void)::madvise(start, length, MADV_DONTNEED);  // clean file pages: re-read on demand
    return;
  }
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  // data_ is page-aligned, so the offset in the file is too.
  (void)::mmap(start, length, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd,
               static_cast<off_t>(first - base));
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace tulu
