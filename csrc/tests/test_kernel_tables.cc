// Dispatch by features and the kernel tables themselves: the implies relation, what forcing a
// path leaves active, that a table keeps its best real row for a feature it has no row for,
// forcing and exercise records, and that every family of kernel_families() is covered by a
// test executable (whose finish() then fails unless each supported row of it ran).
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "hbn/isa.h"
#include "hbn/kernel_table.h"
#include "tests/check.h"

using namespace hbn;

namespace {

void test_features() {
  CHECK(feature_closure(kAvx512) == (kAvx512 | kAvx2), "avx512 implies avx2");
  CHECK(feature_closure(kAvx2) == kAvx2, "avx2 implies nothing else");
  CHECK(feature_closure(kNeon) == kNeon, "neon implies nothing else");
  CHECK(feature_closure(kDotprod) == (kDotprod | kNeon), "dotprod implies neon");
#if defined(HBN_ARM64)
  CHECK(((supported_features() & kDotprod) != 0) == cpu_features().dotprod, "dotprod follows HWCAP_ASIMDDP");
#endif
  FeatureMask m = 1234;
  CHECK(parse_isa("scalar", &m) && m == kNoFeatures, "scalar is no features");
  CHECK(parse_isa("avx512", &m) && m == (kAvx512 | kAvx2), "the avx512 path");
  CHECK(!parse_isa("sse9", &m), "unknown path rejected");
  CHECK(isa_paths().front() == "scalar" && isa_paths().size() == static_cast<size_t>(kFeatureCount) + 1, "paths");
  CHECK((supported_features() & ~compiled_features()) == 0, "supported within compiled");
  CHECK(feature_closure(supported_features()) == supported_features(), "supported is closed");
  CHECK(active_features() == supported_features(), "no override: everything supported");
  for (const std::string& p : hbn_test::supported_paths()) {
    CHECK(set_isa(p), "set_isa(%s)", p.c_str());
    FeatureMask want;
    parse_isa(p, &want);
    CHECK(active_features() == want, "forcing %s leaves exactly its features", p.c_str());
    CHECK(active_isa() == p, "active_isa() after forcing %s", p.c_str());
  }
  reset_isa();
  CHECK(active_features() == supported_features(), "reset_isa");
  CHECK(!set_isa("sse9"), "set_isa rejects unknown paths");
  CHECK(isa_name(kNoFeatures) == "scalar" && isa_name(kAvx512 | kAvx2) == "avx512", "isa_name");
}

int f_avx2() { return 2; }
int f_scalar() { return 0; }

void test_selection() {
  // A family with rows for avx2 and scalar only: under avx512 it keeps its avx2 row.
  const KernelTable<int (*)()> t("test_family", {{kAvx2, "avx2", f_avx2}, {kNoFeatures, "scalar", f_scalar}});
  CHECK(t.best_for(kAvx512 | kAvx2) == 0, "avx512 active -> the avx2 row");
  CHECK(t.best_for(kAvx2) == 0, "avx2 active -> the avx2 row");
  CHECK(t.best_for(kNoFeatures) == 1 && t.best_for(kNeon) == 1, "no avx2 -> scalar");
  const KernelTable<int (*)()> no_portable("test_lut", {{kAvx512, "avx512", f_avx2}});
  CHECK(no_portable.best_for(kAvx2) == -1, "no qualifying row");
  CHECK(no_portable.entry_requires(0) == (kAvx512 | kAvx2), "rows require the closure");
  t.clear_exercised();
  CHECK(t.force("scalar") && (*t.select())() == 0, "forced row wins");
  CHECK(t.exercised(1) && !t.exercised(0), "the forced row is recorded");
  CHECK(!t.force("nope"), "unknown rows cannot be forced");
  t.release();
  CHECK(t.selected() == t.best_for(active_features()), "release");
}

void test_every_family_is_covered() {
  std::set<std::string> names;
  for (const KernelFamily* f : kernel_families()) {
    names.insert(f->name());
    bool covered = false;
    for (const auto& ft : hbn_test::family_tests()) covered |= std::strcmp(ft.first, f->name()) == 0;
    CHECK(covered, "family %s has no test executable in check.h family_tests()", f->name());
    // Every family but the LUT kernels (whose caller falls back to the FMA kernels) ends with a
    // portable row, so dispatch always finds one.
    if (std::strcmp(f->name(), "wbconv_lut") != 0)
      CHECK(f->size() > 0 && f->entry_requires(f->size() - 1) == kNoFeatures,
            "family %s does not end with a portable row", f->name());
    std::printf("family %s:", f->name());
    for (int i = 0; i < f->size(); ++i)
      std::printf(" %s%s", f->entry_name(i), f->entry_supported(i) ? "" : "(unsupported)");
    std::printf("\n");
  }
  for (const auto& ft : hbn_test::family_tests())
    CHECK(names.count(ft.first), "family_tests() names %s, which is not a kernel family", ft.first);
}

}  // namespace

int main() {
  test_features();
  test_selection();
  test_every_family_is_covered();
  return hbn_test::finish("test_kernel_tables");
}
