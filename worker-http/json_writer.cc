#include "worker-http/json_writer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kelp {

void AppendGoJsonString(std::string* out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out->append("\\\""); continue;
      case '\\': out->append("\\\\"); continue;
      case '\n': out->append("\\n"); continue;
      case '\r': out->append("\\r"); continue;
      case '\t': out->append("\\t"); continue;
      default: break;
    }
    if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      out->append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      i += 2;
    } else {
      out->push_back(char(c));
    }
  }
  out->push_back('"');
}

std::string GoJsonFloat32(float f) {
  if (f == 0) return "0";
  // The fewest significant digits that round-trip; %e rounds them correctly.
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, double(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  std::string s(buf);
  const size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  std::string sign, mantissa;
  for (char c : s.substr(0, e)) {
    if (c == '-') sign = "-";
    else if (c != '.') mantissa.push_back(c);
  }
  const float mag = std::fabs(f);
  if (mag < 1e-6f || mag >= 1e21f) {
    // strconv's 'e' form, with the exponent's leading zero dropped as encoding/json does.
    std::string out = sign + mantissa.substr(0, 1);
    if (mantissa.size() > 1) out += "." + mantissa.substr(1);
    return out + "e" + (exponent < 0 ? "-" : "+") + std::to_string(std::abs(exponent));
  }
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) return sign + "0." + std::string(size_t(-point), '0') + mantissa;
  if (size_t(point) >= mantissa.size()) return sign + mantissa + std::string(size_t(point) - mantissa.size(), '0');
  return sign + mantissa.substr(0, size_t(point)) + "." + mantissa.substr(size_t(point));
}

std::string GoJsonObject(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out.push_back(',');
    AppendGoJsonString(&out, k);
    out.push_back(':');
    AppendGoJsonString(&out, v);
  }
  return out + "}";
}

void JsonObject::Key(std::string_view key) {
  if (body_.size() > 1) body_.push_back(',');
  AppendGoJsonString(&body_, key);
  body_.push_back(':');
}
JsonObject& JsonObject::Str(std::string_view key, std::string_view v) { Key(key); AppendGoJsonString(&body_, v); return *this; }
JsonObject& JsonObject::Num(std::string_view key, long long v) { Key(key); body_ += std::to_string(v); return *this; }
JsonObject& JsonObject::UNum(std::string_view key, unsigned long long v) { Key(key); body_ += std::to_string(v); return *this; }
JsonObject& JsonObject::Bool(std::string_view key, bool v) { Key(key); body_ += v ? "true" : "false"; return *this; }
JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) { Key(key); body_.append(json); return *this; }

}  // namespace kelp
