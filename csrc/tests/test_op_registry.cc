// The op registry's own consistency, so a new op unit with a slip in its schema fails here
// rather than in a file: every HBN_OPS code resolves to a unit defining that op, slot and
// attribute names are unique, every attribute is a known key, integer defaults lie in range.
#include <cstring>
#include <set>
#include <string>

#include "runtime/op.h"
#include "tests/check.h"

int main() {
  int n_ops = 0;
#define HBN_X(code, op)                                                                 \
  {                                                                                     \
    ++n_ops;                                                                            \
    const hbn::OpSchema* s = hbn::op_schema(code);                                      \
    CHECK(s && s->type == hbn::OpType::op && std::strcmp(s->name, #op) == 0, "op %s", #op); \
  }
  HBN_OPS(HBN_X)
#undef HBN_X
  CHECK(static_cast<int>(hbn::op_schemas().size()) == n_ops, "op_schemas() lists every op once");
  CHECK(hbn::op_schema(0) == nullptr && hbn::op_schema(hbn::kMaxOpCode + 1) == nullptr, "unknown codes");
  for (const hbn::OpSchema* s : hbn::op_schemas()) {
    std::set<std::string> slots, attrs;
    for (const auto& t : s->slots) CHECK(slots.insert(t.name).second, "%s: slot %s twice", s->name, t.name);
    for (const auto& a : s->attrs) {
      const hbn::AttrInfo* info = hbn::attr_info(a.key);
      CHECK(info != nullptr, "%s: attribute key %u unknown", s->name, a.key);
      if (!info) continue;
      CHECK(attrs.insert(info->name).second, "%s: attribute %s twice", s->name, info->name);
      if (info->type == hbn::AttrType::i64) {
        CHECK(a.lo <= a.hi, "%s.%s: empty range", s->name, info->name);
        CHECK(a.required || (a.lo <= a.dflt && a.dflt <= a.hi), "%s.%s: default out of range", s->name, info->name);
      }
    }
    CHECK(s->min_inputs >= 1 && (s->max_inputs < 0 || s->max_inputs >= s->min_inputs), "%s: inputs", s->name);
    CHECK(std::strlen(s->kind) > 0 && std::strlen(s->doc) > 0, "%s: kind and doc", s->name);
  }
  for (const hbn::AttrInfo& a : hbn::attr_infos())
    CHECK(hbn::attr_info(a.key) == &a, "attribute key %u listed twice", a.key);
  return hbn_test::finish("test_op_registry");
}
