#include "worker-http/json_writer.h"

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
