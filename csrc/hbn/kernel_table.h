// Kernel families and their tables. Every family that has per-ISA kernels (bconv, bitpack,
// sgemm micro-kernels, the WeightBin LUT kernels, the runtime ops, transpose, the peak loops)
// defines exactly one KernelTable: rows of {required features, name, kernel(s)} in preference
// order (best first). Dispatch takes the first row whose features are all active
// (hbn/isa.h), so a row for a new feature is one table line plus the translation unit holding
// its kernel, and a family without such a row keeps its best real row.
//
// The same tables drive the tests (each supported row is forced and checked against the
// scalar reference), the benchmarks and `hbn info`, all through kernel_families(). A row
// records that it was dispatched, so a test can prove it ran every row.
#pragma once
#include <atomic>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "hbn/isa.h"

namespace hbn {

// The type-independent view of a table: names, required features, forcing, exercise records.
class KernelFamily {
 public:
  const char* name() const { return name_; }
  int size() const { return static_cast<int>(names_.size()); }
  const char* entry_name(int i) const { return names_[static_cast<size_t>(i)]; }
  FeatureMask entry_requires(int i) const { return requires_[static_cast<size_t>(i)]; }
  // The CPU and build can run row i.
  bool entry_supported(int i) const { return (entry_requires(i) & ~supported_features()) == 0; }
  int find(const std::string& entry) const;
  // The row dispatch takes under `active` (ignoring any forced row), or -1 when none qualifies.
  int best_for(FeatureMask active) const;
  // The row dispatch takes now: the forced row if any, else best_for(active_features()).
  int selected() const;
  // Forces one row regardless of the active features (tests and benchmarks run every row this
  // way, including rows no ISA path selects, e.g. AVX2's second bconv formulation). Returns
  // false, changing nothing, for an unknown or unsupported row. release() undoes it.
  bool force(const std::string& entry) const;
  void release() const { forced_.store(-1, std::memory_order_relaxed); }
  // Whether row i was dispatched since the last clear_exercised().
  bool exercised(int i) const { return used_[static_cast<size_t>(i)].load(std::memory_order_relaxed); }
  void clear_exercised() const;

  KernelFamily(const KernelFamily&) = delete;
  KernelFamily& operator=(const KernelFamily&) = delete;

 protected:
  KernelFamily(const char* name, std::vector<FeatureMask> requires, std::vector<const char*> names);
  // Records the dispatch of row i. Checked before stored: after the first call the flag's
  // cache line is only read, so threads dispatching at once never contend for it.
  void mark(int i) const {
    std::atomic<bool>& u = used_[static_cast<size_t>(i)];
    if (!u.load(std::memory_order_relaxed)) u.store(true, std::memory_order_relaxed);
  }

 private:
  const char* name_;
  std::vector<FeatureMask> requires_;
  std::vector<const char*> names_;
  mutable std::atomic<int> forced_{-1};
  std::unique_ptr<std::atomic<bool>[]> used_;
};

template <class K>
class KernelTable : public KernelFamily {
 public:
  struct Row {
    FeatureMask requires;
    const char* name;
    K kernel;
  };
  KernelTable(const char* family, std::initializer_list<Row> rows)
      : KernelFamily(family, requires_of(rows), names_of(rows)), rows_(rows) {}

  // The kernel dispatch uses now (see selected()), or null when no row qualifies (only tables
  // without a portable row, e.g. the WeightBin LUT kernels, can return null).
  const K* select() const {
    const int i = selected();
    if (i < 0) return nullptr;
    mark(i);
    return &rows_[static_cast<size_t>(i)].kernel;
  }
  // Row i's kernel, recorded as exercised (explicit per-row use: packing for every supported
  // row, the peak loops).
  const K& use(int i) const {
    mark(i);
    return rows_[static_cast<size_t>(i)].kernel;
  }
  const Row& row(int i) const { return rows_[static_cast<size_t>(i)]; }

 private:
  static std::vector<FeatureMask> requires_of(std::initializer_list<Row> rows) {
    std::vector<FeatureMask> v;
    for (const Row& r : rows) v.push_back(feature_closure(r.requires));
    return v;
  }
  static std::vector<const char*> names_of(std::initializer_list<Row> rows) {
    std::vector<const char*> v;
    for (const Row& r : rows) v.push_back(r.name);
    return v;
  }
  std::vector<Row> rows_;
};

// Rows compiled only on one architecture: HBN_X86_ROW({kAvx2, "avx2", kernel}) is the row on
// x86 builds and nothing elsewhere (the kernel's translation unit is not compiled there).
#if defined(HBN_X86)
#define HBN_X86_ROW(...) __VA_ARGS__,
#else
#define HBN_X86_ROW(...)
#endif
#if defined(HBN_ARM64)
#define HBN_ARM64_ROW(...) __VA_ARGS__,
#else
#define HBN_ARM64_ROW(...)
#endif

// Every family, for the test loops, benchmarks, the Python bindings and `hbn info`
// (kernel_families.cc: one line per family).
const std::vector<const KernelFamily*>& kernel_families();
// The family of that name, or null.
const KernelFamily* find_kernel_family(const std::string& name);

}  // namespace hbn
