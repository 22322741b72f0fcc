#include "worker-http/read_headers.h"

#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "worker-http/header_block.h"

namespace kelp {
namespace {

bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f && !std::strchr("()<>@,;:\\\"/[]?=", c); }

struct Passthrough {
  std::string_view param, header;
};
constexpr Passthrough kPassthrough[] = {
    {"response-cache-control", "Cache-Control"},       {"response-content-disposition", "Content-Disposition"},
    {"response-content-encoding", "Content-Encoding"}, {"response-content-language", "Content-Language"},
    {"response-content-type", "Content-Type"},         {"response-expires", "Expires"},
};

// The server frames the message itself: a stored pair never says how long the
// body is or what becomes of the connection.
bool IsFramingHeader(std::string_view name) {
  for (std::string_view f : {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer", "Upgrade",
                             "Te", "Proxy-Connection"})
    if (name == f) return true;
  return false;
}

std::string Lower(std::string s) {
  for (char& c : s) c = char(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string ContentDisposition(const std::string& type, const std::string& filename) {
  // Go's mime.FormatMediaType percent-encodes (RFC 2231) a value holding any
  // byte outside printable ASCII but the tab: control bytes never reach the header.
  bool plain = true, token = !filename.empty();
  for (char c : filename) {
    if ((c < ' ' || c > '~') && c != '\t') plain = false;
    if (!IsTokenChar(c)) token = false;
  }
  if (!plain) {
    std::string enc;
    static const char* kHex = "0123456789ABCDEF";
    for (unsigned char c : filename) {
      if (IsTokenChar(char(c)) && c != '*' && c != '\'' && c != '%') enc.push_back(char(c));
      else { enc.push_back('%'); enc.push_back(kHex[c >> 4]); enc.push_back(kHex[c & 15]); }
    }
    return type + "; filename*=utf-8''" + enc;
  }
  if (token) return type + "; filename=" + filename;
  std::string q = type + "; filename=\"";
  for (char c : filename) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  return q + "\"";
}

bool IsTrueParam(const std::string& v) {
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

void SetPassthroughHeaders(const http::Request& r, const std::string& filename, http::Response* resp) {
  std::vector<std::string> seen;  // Go reads the first value of each parameter
  for (const auto& [key, value] : r.query.empty() ? std::vector<std::pair<std::string, std::string>>{} : r.QueryPairs()) {
    const std::string lower = Lower(key);
    bool first = true;
    for (const auto& s : seen) first = first && s != key;
    if (!first) continue;
    seen.push_back(key);
    for (const Passthrough& p : kPassthrough) {
      if (lower != p.param) continue;
      resp->Set(std::string(p.header), value);
    }
  }
  if (filename.empty() || resp->Has("Content-Disposition")) return;
  const bool attachment = !r.query.empty() && IsTrueParam(r.Query("dl"));
  resp->Set("Content-Disposition", ContentDisposition(attachment ? "attachment" : "inline", filename));
}

void SetPairHeaders(std::string_view pairs_json, http::Response* resp) {
  nlohmann::json pairs = nlohmann::json::parse(pairs_json, nullptr, /*allow_exceptions=*/false);
  if (!pairs.is_object()) return;
  for (auto& [k, val] : pairs.items()) {
    if (!val.is_string()) continue;
    // Go's Header().Set: the canonical name, replacing an earlier value.
    const std::string name = http::CanonicalHeaderKey(k);
    if (IsFramingHeader(name)) continue;
    resp->Set(name, val.get<std::string>());
  }
}

}  // namespace kelp
