#include "hbn/kernel_table.h"

namespace hbn {

KernelFamily::KernelFamily(const char* name, std::vector<FeatureMask> requires,
                           std::vector<const char*> names)
    : name_(name),
      requires_(std::move(requires)),
      names_(std::move(names)),
      used_(new std::atomic<bool>[names_.size()]) {
  clear_exercised();
}

int KernelFamily::find(const std::string& entry) const {
  for (int i = 0; i < size(); ++i)
    if (entry == entry_name(i)) return i;
  return -1;
}

int KernelFamily::best_for(FeatureMask active) const {
  for (int i = 0; i < size(); ++i)
    if ((entry_requires(i) & ~active) == 0) return i;
  return -1;
}

int KernelFamily::selected() const {
  const int f = forced_.load(std::memory_order_relaxed);
  return f >= 0 ? f : best_for(active_features());
}

bool KernelFamily::force(const std::string& entry) const {
  const int i = find(entry);
  if (i < 0 || !entry_supported(i)) return false;
  forced_.store(i, std::memory_order_relaxed);
  return true;
}

void KernelFamily::clear_exercised() const {
  for (int i = 0; i < size(); ++i) used_[static_cast<size_t>(i)].store(false, std::memory_order_relaxed);
}

const KernelFamily* find_kernel_family(const std::string& name) {
  for (const KernelFamily* f : kernel_families())
    if (name == f->name()) return f;
  return nullptr;
}

}  // namespace hbn
