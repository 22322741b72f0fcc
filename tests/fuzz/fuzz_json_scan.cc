// libFuzzer: Query's JSON scanner on needle bytes anyone can upload.
// Invariants: every top-level value is a slice of the input, in order and
// not overlapping; paths and projections of any value stay inside it.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "common/json_scan.h"

using namespace kelp;

namespace {

std::vector<std::string_view> TopLevelValues(std::string_view data) {
  std::vector<std::string_view> out;
  json::ForEachTopLevelValue(data, [&](std::string_view v) {
    out.push_back(v);
    return true;
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t split = data[0] % 16;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view path = all.substr(0, std::min(split, all.size()));
  const std::string_view doc = all.substr(path.size());
  const char* prev_end = doc.data();
  for (const std::string_view line : TopLevelValues(doc)) {
    if (line.empty() || line.data() < prev_end || line.data() + line.size() > doc.data() + doc.size()) abort();
    prev_end = line.data() + line.size();
    const json::Value v = json::Get(line, path);
    if (v.type != json::Type::kMissing && (v.raw.data() < line.data() || v.raw.data() + v.raw.size() > line.data() + line.size())) abort();
    json::FilterPasses(line, path, ">", "1");
    json::FilterPasses(line, path, "%", "a*");
    json::Project(line, {std::string(path), "a.b"});
    if (v.type == json::Type::kString) json::Unescape(v.raw);
  }
  return 0;
}
