// JSON text as Go's encoding/json writes it: compact, map keys sorted, and
// <, >, & and U+2028/U+2029 escaped in strings.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kelp {

void AppendGoJsonString(std::string* out, std::string_view s);
// A float32 as encoding/json writes it: the shortest digits that read back as
// the same float32, in fixed notation (exponent form below 1e-6 or from 1e21).
std::string GoJsonFloat32(float f);
std::string GoJsonObject(const std::map<std::string, std::string>& m);

// Builds a JSON object in insertion order (Go structs keep field order).
class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view v);
  JsonObject& Num(std::string_view key, long long v);
  JsonObject& UNum(std::string_view key, unsigned long long v);
  JsonObject& Bool(std::string_view key, bool v);
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Done() const { return body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_ = "{";
};

}  // namespace kelp
