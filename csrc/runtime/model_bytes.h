// The bytes of a .hbn file as the executor sees them: a read-only span plus whatever keeps it
// alive. Three owners exist: a vector the span was moved into, a read-only memory mapping of the
// file (pages shared by every process and every model that maps the same file), or nothing at
// all when the caller owns the buffer and promises to keep it alive longer than the model (the
// C API's hbn_model_load_buffer). The executor never copies the span; tensors point into it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hbn {

struct ModelBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;  // null for a caller-owned buffer

  // Takes the vector over (no copy of its contents).
  static ModelBytes from_vector(std::vector<uint8_t> bytes);
  // Borrows a caller-owned buffer: nothing is copied and nothing is freed.
  static ModelBytes borrow(const uint8_t* data, size_t size);
  // Maps the file read-only. Checks what the path is before reading any of it: a directory, a
  // FIFO, a device or another non-regular file is refused with a message saying which, and so
  // is a file that does not start with the .hbn magic (so a huge non-model file costs nothing).
  // Throws std::system_error (errno set) when the file cannot be opened or mapped, and
  // FormatError (runtime/format.h) when it is not a regular file or not a .hbn file.
  static ModelBytes map_file(const std::string& path);
};

// Drops this process's references to the whole pages within [begin, begin + n) when they lie in
// a live model file mapping (map_file; madvise MADV_DONTNEED on a read-only shared mapping), so
// pages a kernel has repacked into its own memory stop counting as this process's resident
// memory. The pages stay in the page cache and a later read faults them back in with the same
// contents, so a reader of the span cannot tell. Does nothing for any other memory (a vector or
// a caller's buffer would lose its contents), so callers need not know where the bytes live.
void release_file_pages(const void* begin, size_t n);

}  // namespace hbn
