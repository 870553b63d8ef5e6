#include "runtime/model_bytes.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <system_error>

#include "runtime/format.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define HBN_HAVE_MMAP 1
#endif

namespace hbn {
namespace {

constexpr char kMagic[8] = {'H', 'B', 'N', 'M', 'O', 'D', 'E', 'L'};

#if HBN_HAVE_MMAP
struct Mapping;
// The live file mappings, so release_file_pages touches nothing else.
std::mutex& live_mappings_mutex() {
  static std::mutex m;
  return m;
}
std::vector<const Mapping*>& live_mappings() {
  static std::vector<const Mapping*> v;
  return v;
}

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    {
      std::lock_guard<std::mutex> lock(live_mappings_mutex());
      auto& v = live_mappings();
      v.erase(std::remove(v.begin(), v.end(), this), v.end());
    }
    if (addr) munmap(addr, size);
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
#endif

}  // namespace

ModelBytes ModelBytes::from_vector(std::vector<uint8_t> bytes) {
  auto v = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  ModelBytes b;
  b.data = v->data();
  b.size = v->size();
  b.owner = std::move(v);
  return b;
}

ModelBytes ModelBytes::borrow(const uint8_t* data, size_t size) {
  ModelBytes b;
  b.data = data;
  b.size = size;
  return b;
}

ModelBytes ModelBytes::map_file(const std::string& path) {
#if HBN_HAVE_MMAP
  Fd f;
  // O_NONBLOCK: opening a FIFO without a writer must not block; it is refused below anyway.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open model file " + path);
  struct stat st;
  if (::fstat(f.fd, &st) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot stat model file " + path);
  if (!S_ISREG(st.st_mode))
    throw FormatError(path + " is " + file_kind(st.st_mode) + ", not a .hbn model file");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeaderSize)  // also keeps mmap away from an empty file
    throw FormatError(path + ": file too small for the header (" + std::to_string(size) + " < " +
                      std::to_string(kHeaderSize) + " bytes)");
  char magic[sizeof(kMagic)] = {};
  const ssize_t got = size >= sizeof(kMagic) ? ::pread(f.fd, magic, sizeof(magic), 0) : 0;
  if (got < 0) throw std::system_error(errno, std::generic_category(), "cannot read model file " + path);
  if (static_cast<size_t>(got) < sizeof(kMagic) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    throw FormatError(path + ": bad magic: not a .hbn file");
  auto m = std::make_shared<Mapping>();
  m->addr = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd, 0);
  if (m->addr == MAP_FAILED) {
    m->addr = nullptr;
    throw std::system_error(errno, std::generic_category(), "cannot map model file " + path);
  }
  m->size = size;
  ModelBytes b;
  b.data = static_cast<const uint8_t*>(m->addr);
  b.size = size;
  {
    std::lock_guard<std::mutex> lock(live_mappings_mutex());
    live_mappings().push_back(m.get());
  }
  b.owner = std::move(m);
  return b;
#else
#error "hbn_engine needs POSIX mmap to map model files"
#endif
}

void release_file_pages(const void* begin, size_t n) {
#if HBN_HAVE_MMAP
  const uintptr_t b = reinterpret_cast<uintptr_t>(begin);
  {
    std::lock_guard<std::mutex> lock(live_mappings_mutex());
    bool inside = false;
    for (const Mapping* m : live_mappings()) {
      const uintptr_t lo = reinterpret_cast<uintptr_t>(m->addr);
      inside |= b >= lo && n <= m->size && b - lo <= m->size - n;
    }
    if (!inside) return;
  }
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages only: the partial pages at both ends hold neighbouring tensors. The mapping
  // stays alive meanwhile (its owner is the model being loaded). Failure only means the pages
  // stay counted.
  const uintptr_t lo = (b + page - 1) / page * page, hi = (b + n) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
#else
  (void)begin;
  (void)n;
#endif
}

}  // namespace hbn
