#include "llama/torch_zip.h"

#include <algorithm>

#include "core/error.h"

namespace tulu {

namespace {

constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint64_t kMaxEntries = 1'000'000;

// Bounds-checked little-endian reads from the mapped file.
class Reader {
 public:
  Reader(const MappedFile& file) : data_(file.data()), size_(file.size()), path_(file.path()) {}

  void need(uint64_t offset, uint64_t n, const char* what) const {
    TULU_CHECK(offset <= size_ && n <= size_ - offset, path_, ": zip ", what, " at byte ", offset,
               " reaches past the end of the file (", size_, " bytes; truncated?)");
  }
  uint64_t le(uint64_t offset, int bytes, const char* what) const {
    need(offset, static_cast<uint64_t>(bytes), what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | data_[offset + static_cast<uint64_t>(i)];
    return v;
  }
  uint16_t u16(uint64_t offset, const char* what) const { return static_cast<uint16_t>(le(offset, 2, what)); }
  uint32_t u32(uint64_t offset, const char* what) const { return static_cast<uint32_t>(le(offset, 4, what)); }
  uint64_t u64(uint64_t offset, const char* what) const { return le(offset, 8, what); }
  std::string str(uint64_t offset, uint64_t n, const char* what) const {
    need(offset, n, what);
    return std::string(reinterpret_cast<const char*>(data_ + offset), n);
  }
  uint64_t size() const { return size_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  const std::string& path_;
};

struct Directory {
  uint64_t offset = 0, size = 0, count = 0;
};

Directory find_central_directory(const Reader& r, const std::string& path) {
  // The end-of-central-directory record is 22 bytes plus a comment of up to 65535 bytes.
  TULU_CHECK(r.size() >= 22, path, ": file is ", r.size(), " bytes, too short for a zip archive");
  const uint64_t lowest = r.size() >= 22 + 65535 ? r.size() - 22 - 65535 : 0;
  uint64_t eocd = r.size() - 22;
  while (r.u32(eocd, "end record") != kEndOfCentralDir) {
    TULU_CHECK(eocd > lowest, path, ": not a zip archive, or truncated (no end-of-central-directory record); "
                                    "PyTorch .bin files must be torch.save zip archives (torch >= 1.6)");
    --eocd;
  }
  Directory dir;
  dir.count = r.u16(eocd + 10, "end record");
  dir.size = r.u32(eocd + 12, "end record");
  dir.offset = r.u32(eocd + 16, "end record");
  const bool zip64 = dir.count == 0xffff || dir.size == 0xffffffff || dir.offset == 0xffffffff;
  if (eocd >= 20 && r.u32(eocd - 20, "zip64 locator") == kZip64Locator) {
    const uint64_t record = r.u64(eocd - 20 + 8, "zip64 locator");
    TULU_CHECK(r.u32(record, "zip64 end record") == kZip64EndOfCentralDir, path,
               ": zip64 end record not found at byte ", record, " (bad central directory)");
    dir.count = r.u64(record + 32, "zip64 end record");
    dir.size = r.u64(record + 40, "zip64 end record");
    dir.offset = r.u64(record + 48, "zip64 end record");
  } else {
    TULU_CHECK(!zip64, path, ": zip64 sizes announced but the zip64 locator is missing (bad central directory)");
  }
  TULU_CHECK(dir.count <= kMaxEntries, path, ": zip central directory claims ", dir.count, " entries");
  r.need(dir.offset, dir.size, "central directory");
  return dir;
}

// Reads the ZIP64 extended-information extra field: the 64-bit values replace, in order, the
// 32-bit fields that were 0xffffffff.
void apply_zip64_extra(const Reader& r, uint64_t extra, uint64_t extra_len, uint64_t* usize, uint64_t* csize,
                       uint64_t* local, const std::string& where) {
  uint64_t p = extra;
  const uint64_t end = extra + extra_len;
  while (p + 4 <= end) {
    const uint16_t id = r.u16(p, "extra field");
    const uint16_t len = r.u16(p + 2, "extra field");
    TULU_CHECK(p + 4 + len <= end, where, ": extra field overruns its header");
    if (id == kZip64ExtraId) {
      uint64_t q = p + 4;
      for (uint64_t* field : {usize, csize, local}) {
        if (*field != 0xffffffff) continue;
        TULU_CHECK(q + 8 <= p + 4 + len, where, ": zip64 extra field is too short");
        *field = r.u64(q, "zip64 extra field");
        q += 8;
      }
      return;
    }
    p += 4 + len;
  }
}

}  // namespace

ZipArchive::ZipArchive(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  const Reader r(*file_);
  const Directory dir = find_central_directory(r, path);
  uint64_t p = dir.offset;
  const uint64_t dir_end = dir.offset + dir.size;
  for (uint64_t i = 0; i < dir.count; ++i) {
    TULU_CHECK(p + 46 <= dir_end && r.u32(p, "central header") == kCentralHeader, path,
               ": bad zip central directory (entry ", i, " at byte ", p, ")");
    const uint16_t flags = r.u16(p + 8, "central header");
    const uint16_t method = r.u16(p + 10, "central header");
    uint64_t csize = r.u32(p + 20, "central header");
    uint64_t usize = r.u32(p + 24, "central header");
    const uint16_t name_len = r.u16(p + 28, "central header");
    const uint16_t extra_len = r.u16(p + 30, "central header");
    const uint16_t comment_len = r.u16(p + 32, "central header");
    uint64_t local = r.u32(p + 42, "central header");
    TULU_CHECK(p + 46 + name_len + extra_len + comment_len <= dir_end, path,
               ": bad zip central directory (entry ", i, " overruns it)");
    const std::string name = r.str(p + 46, name_len, "entry name");
    const std::string where = str_cat(path, ": zip entry '", name, "'");
    apply_zip64_extra(r, p + 46 + name_len, extra_len, &usize, &csize, &local, where);
    TULU_CHECK((flags & 1) == 0, where, " is encrypted");
    TULU_CHECK(method == 0, where, " is compressed (method ", method,
               "); only stored entries are supported, as torch.save writes them");
    TULU_CHECK(csize == usize, where, ": stored entry with compressed size ", csize, " != size ", usize);

    TULU_CHECK(r.u32(local, "local header") == kLocalHeader, where, ": no local header at byte ", local);
    const uint64_t local_name_len = r.u16(local + 26, "local header");
    const uint64_t local_extra_len = r.u16(local + 28, "local header");
    ZipEntry e;
    e.data_offset = local + 30 + local_name_len + local_extra_len;
    e.size = usize;
    r.need(e.data_offset, e.size, "entry data");
    TULU_CHECK(entries_.emplace(name, e).second, where, " appears twice in the central directory");
    p += 46 + name_len + extra_len + comment_len;
  }
}

const ZipEntry& ZipArchive::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path(), ": zip entry '", name, "' is missing");
  return it->second;
}

std::string_view ZipArchive::bytes(const ZipEntry& e) const {
  return {reinterpret_cast<const char*>(file_->data() + e.data_offset), static_cast<size_t>(e.size)};
}

}  // namespace tulu
