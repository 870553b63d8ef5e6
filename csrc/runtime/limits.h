// Resource limits a model must stay within (docs/format.md, "Resource limits"). A .hbn file of a
// few hundred bytes can describe a graph that needs gigabytes or hours per image; the executor
// checks the file's per-sample work and memory at load and every batch's planned arena before
// allocating it, and refuses with ResourceLimitError instead. The defaults pass every model of
// the zoo (at its own input size) by a wide margin; raise them for bigger models.
#pragma once
#include <cstdint>

#include "runtime/format.h"

namespace hbn {

// A file or a batch that needs more than the Limits allow. A FormatError, so callers that catch
// "bad model file" catch this too.
class ResourceLimitError : public FormatError {
 public:
  using FormatError::FormatError;
};

struct Limits {
  // Activation arena planned for one run of any batch size (values + scratch), bytes.
  uint64_t max_arena_bytes = uint64_t(16) << 30;
  // The same for a batch of one, checked at load (the zoo's largest is ResNet-18: ~10 MB).
  uint64_t max_sample_arena_bytes = uint64_t(1) << 30;
  // Multiply-accumulates of one image through every convolution (ResNet-18: 1.8e9).
  uint64_t max_macs_per_sample = uint64_t(1) << 36;
  // Input elements read by every pooling (max, avg, adaptive) and LRN window of one image.
  uint64_t max_pool_reads_per_sample = uint64_t(1) << 32;
  // Arena kept between runs (at least the batch-1 arena): a run needing more, and over 4x what
  // the previous run needed, gives its arena back afterwards, so one huge batch does not pin
  // its memory; consecutive big runs keep it.
  uint64_t max_kept_arena_bytes = uint64_t(256) << 20;
};

}  // namespace hbn
