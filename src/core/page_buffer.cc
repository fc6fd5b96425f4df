#include "core/page_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace tulu {

PageBuffer PageBuffer::allocate(size_t bytes, bool huge) {
  PageBuffer buffer;
  if (bytes == 0) return buffer;
  const size_t page = huge ? size_t{2} << 20 : static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t size = (bytes + page - 1) / page * page;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot allocate ", size, " bytes: ", std::strerror(errno));
  // Advice only: a kernel without transparent huge pages keeps 4 KiB pages.
  if (huge) (void)::madvise(p, size, MADV_HUGEPAGE);
  buffer.data_ = p;
  buffer.size_ = size;
  return buffer;
}

PageBuffer::~PageBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace tulu
