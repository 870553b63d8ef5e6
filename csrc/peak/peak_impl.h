// Internal: the per-ISA loops behind peak.h, rows of the tables in peak_table.cc. Each runs `iters` iterations and returns a
// checksum; macs_per_iter says how much work one iteration is.
#pragma once
#include <cstdint>

#include "hbn/kernel_table.h"

namespace hbn {
namespace detail {

struct PeakLoop {
  double (*fn)(int64_t iters);
  double macs_per_iter;
};

// The two tables (peak_table.cc), best first.
const KernelTable<PeakLoop>& peak_binary_loops();
const KernelTable<PeakLoop>& peak_fma_loops();
const KernelTable<PeakLoop>& peak_int8_loops();  // u8 x s8 -> s32 MACs (the qgemm rows' instructions)

}  // namespace detail
}  // namespace hbn
