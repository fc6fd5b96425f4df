#include "llama/repack_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "tensor/dtype.h"
#include "tensor/quant_repack.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL, which is ignored
#endif

namespace tulu {

namespace {

constexpr char kMagic[8] = {'T', 'U', 'L', 'U', 'R', '1', '6', '\0'};
constexpr uint64_t kAlign = uint64_t{2} << 20;  // the data region starts on a 2 MiB boundary
// Pieces written at once: 2 MiB-aligned writes of 2 MiB or more fill whole 2 MiB folios.
constexpr uint64_t kPiece = uint64_t{4} << 20;

std::atomic<bool> g_cache{true};  // --no-repack-cache clears it

uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A 64-bit digest of n bytes (four interleaved multiply-xor lanes: several GB/s).
uint64_t digest(const uint8_t* p, size_t n) {
  uint64_t lanes[4] = {1, 2, 3, 4};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lanes[l] = (lanes[l] ^ w) * 0x9E3779B97F4A7C15ull;
      lanes[l] ^= lanes[l] >> 29;
    }
  uint64_t h = n;
  for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  for (uint64_t lane : lanes) h = (h ^ lane) * 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 31);
}

std::string real_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(path, ec);
  return ec ? path : canonical.string();
}

// Everything the bytes depend on; a file made for anything else is stale.
std::string cache_key(const std::string& source_path, const MappedFile& source,
                      std::span<const RepackJob> jobs, uint64_t total) {
  const FileIdentity& id = source.identity();
  std::ostringstream key;
  key << "tulu repack cache 1: 16-row interleaved Q4_0/Q8_0\n"
      << "source " << source_path << "\nsize " << id.size << " mtime_ns " << id.mtime_ns
      << " inode " << id.inode << " device " << id.device << "\ntensors " << jobs.size()
      << " bytes " << total << "\n";
  for (const RepackJob& job : jobs) {
    const TensorView& v = *job.source;
    key << dtype_name(v.dtype) << ' ' << v.dim(0) << ' ' << v.dim(1) << ' ' << job.output_offset;
    const auto* bytes = static_cast<const uint8_t*>(v.data);
    const auto base = reinterpret_cast<uintptr_t>(source.data());
    const auto at = reinterpret_cast<uintptr_t>(bytes);
    if (at >= base && at - base < source.size() && v.nbytes() <= source.size() - (at - base))
      key << " at " << (at - base) << '\n';
    else  // a copy made at load (a GGUF's q/k rows un-permuted): named by its bytes
      key << " copy " << std::hex << digest(bytes, v.nbytes()) << std::dec << '\n';
  }
  return key.str();
}

uint64_t data_offset(const std::string& key) {
  return round_up(16 + key.size(), kAlign);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void write_all(int fd, const std::string& path, const uint8_t* p, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("cannot write '", path, "': ", std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

bool read_all(int fd, uint8_t* p, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

void make_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create directory '", dir, "': ", ec.message());
}

// Repacks the bytes [begin, end) of the data region into out (end - begin bytes): whole
// 16-row groups of each tensor the range touches, into scratch, then the part in range.
void repack_range(std::span<const RepackJob> jobs, uint64_t begin, uint64_t end, uint8_t* out,
                  std::vector<uint8_t>& scratch) {
  for (const RepackJob& job : jobs) {
    const TensorView& v = *job.source;
    const uint64_t size = v.nbytes();
    if (job.output_offset >= end || job.output_offset + size <= begin) continue;
    const uint64_t a = std::max(begin, job.output_offset) - job.output_offset;
    const uint64_t b = std::min(end, job.output_offset + size) - job.output_offset;
    const auto blocks = static_cast<size_t>(v.dim(1)) / kQuantBlock;
    const uint64_t group = size / static_cast<uint64_t>(v.dim(0) / 16);  // bytes per 16 rows
    const uint64_t g0 = a / group;
    const uint64_t g1 = (b + group - 1) / group;
    scratch.resize(std::max<size_t>(scratch.size(), (g1 - g0) * group));
    repack_r16(v.dtype, static_cast<const uint8_t*>(v.data) + g0 * group,
               static_cast<int64_t>((g1 - g0) * 16), blocks, scratch.data());
    std::memcpy(out + (job.output_offset + a - begin), scratch.data() + (a - g0 * group), b - a);
  }
}

// Writes the whole cache file for `key` under a temporary name and renames it to `path`.
void build(const std::string& path, const std::string& key, std::span<const RepackJob> jobs,
           uint64_t total) {
  std::string temp = path + ".tmp.XXXXXX";
  const int raw = ::mkstemp(temp.data());
  if (raw < 0) fail("cannot create '", temp, "': ", std::strerror(errno));
  Fd fd(raw);
  try {
    const uint64_t start = data_offset(key);
    const uint64_t key_size = key.size();
    std::string header(kMagic, sizeof kMagic);
    header.append(reinterpret_cast<const char*>(&key_size), sizeof key_size);
    header += key;
    write_all(fd.get(), temp, reinterpret_cast<const uint8_t*>(header.data()), header.size(), 0);
    if (::ftruncate(fd.get(), static_cast<off_t>(start + total)) != 0)
      fail("cannot size '", temp, "' to ", start + total, " bytes: ", std::strerror(errno));

    const uint64_t pieces = (total + kPiece - 1) / kPiece;
    const size_t threads = static_cast<size_t>(std::clamp<uint64_t>(
        std::thread::hardware_concurrency(), 1, std::max<uint64_t>(pieces, 1)));
    run_on_threads(threads, [&](size_t t) {
      std::vector<uint8_t> piece(kPiece), scratch;
      for (uint64_t i = t; i < pieces; i += threads) {
        const uint64_t begin = i * kPiece, end = std::min(total, begin + kPiece);
        repack_range(jobs, begin, end, piece.data(), scratch);
        write_all(fd.get(), temp, piece.data(), end - begin, start + begin);
      }
    });
    if (::fdatasync(fd.get()) != 0) fail("cannot sync '", temp, "': ", std::strerror(errno));
    if (::rename(temp.c_str(), path.c_str()) != 0)
      fail("cannot rename '", temp, "' to '", path, "': ", std::strerror(errno));
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
}

// The data region of the file at `path` when it holds exactly `key` and `total` bytes,
// mapped read-only at a 2 MiB-aligned address; nullopt when it is missing or stale.
std::optional<RepackCacheMapping> map_existing(const std::string& path, const std::string& key,
                                               uint64_t total) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  struct stat st {};
  const uint64_t start = data_offset(key);
  const uint64_t size = start + total;
  if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != size) return std::nullopt;
  std::vector<uint8_t> header(16 + key.size());
  if (!read_all(fd.get(), header.data(), header.size(), 0)) return std::nullopt;
  uint64_t key_size = 0;
  std::memcpy(&key_size, header.data() + 8, 8);
  if (std::memcmp(header.data(), kMagic, 8) != 0 || key_size != key.size() ||
      std::memcmp(header.data() + 16, key.data(), key.size()) != 0)
    return std::nullopt;

  // Reserve an address range with 2 MiB of slack, map the file at its aligned start, then
  // give the slack back: the data region then starts on a huge-page boundary.
  void* reserve =
      ::mmap(nullptr, size + kAlign, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) fail("cannot map '", path, "': ", std::strerror(errno));
  const auto low = reinterpret_cast<uintptr_t>(reserve);
  const uintptr_t aligned = round_up(low, kAlign);
  void* p = ::mmap(reinterpret_cast<void*>(aligned), size, PROT_READ, MAP_PRIVATE | MAP_FIXED,
                   fd.get(), 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::munmap(reserve, size + kAlign);
    fail("cannot map '", path, "': ", std::strerror(err));
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t mapped_end = aligned + round_up(size, page);
  if (aligned > low) ::munmap(reserve, aligned - low);
  if (low + size + kAlign > mapped_end)
    ::munmap(reinterpret_cast<void*>(mapped_end), low + size + kAlign - mapped_end);
  auto* data = static_cast<uint8_t*>(p) + start;
  (void)::madvise(data, total, MADV_HUGEPAGE);   // advice: 4 KiB pages work too
  (void)::madvise(p, size, MADV_POPULATE_READ);  // ready before the first token
  RepackCacheMapping mapping;
  mapping.keep_alive = std::shared_ptr<const void>(
      p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  mapping.data = data;
  mapping.path = path;
  return mapping;
}

}  // namespace

void set_repack_cache(bool on) {
  g_cache.store(on);
}

std::string repack_cache_dir() {
  if (!g_cache.load() || env("TULU_REPACK_CACHE") == "0") return "";
  if (const std::string dir = env("TULU_CACHE_DIR"); !dir.empty()) return dir;
  if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return xdg + "/tulu";
  if (const std::string home = env("HOME"); !home.empty()) return home + "/.cache/tulu";
  return "";
}

std::optional<RepackCacheMapping> map_repack_cache(const std::string& dir, const MappedFile& source,
                                                   std::span<const RepackJob> jobs,
                                                   uint64_t total) {
  const std::string source_path = real_path(source.path());
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(source_path)));
  const std::string path =
      dir + "/" + std::filesystem::path(source_path).filename().string() + "." + hash + ".r16";
  const std::string key = cache_key(source_path, source, jobs, total);
  try {
    if (auto hit = map_existing(path, key, total)) return hit;
    make_directories(dir);
    std::fprintf(stderr,
                 "tulu: writing the repacked weights (%.1f MiB) to %s once; later loads map "
                 "them (--no-repack-cache: repack in memory at every load)\n",
                 static_cast<double>(total) / (1 << 20), path.c_str());
    build(path, key, jobs, total);
    auto made = map_existing(path, key, total);
    if (!made) fail("'", path, "' does not read back as written");
    made->built = true;
    return made;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulu: repack cache not used, repacking in memory: %s\n", e.what());
    return std::nullopt;
  }
}

}  // namespace tulu
