#include "worker-http/request_rules.h"

#include <strings.h>

namespace kelp::http {
namespace {

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool Boundary(char c) { return c == ' ' || c == ',' || c == '\t'; }

Refusal NetHttp(std::string status, std::string body) {
  return Refusal{Refusal::Form::kNetHttp, std::move(status), std::move(body)};
}

}  // namespace

bool HasToken(std::string_view v, std::string_view token) {
  if (token.empty() || token.size() > v.size()) return false;
  for (size_t at = 0; at + token.size() <= v.size(); ++at) {
    if (at > 0 && !Boundary(v[at - 1])) continue;
    const size_t end = at + token.size();
    if (end != v.size() && !Boundary(v[end])) continue;
    if (EqualFold(v.substr(at, token.size()), token)) return true;
  }
  return false;
}

bool AcceptHead(const Request& head, int http_minor, Refusal* refusal) {
  size_t encodings = 0, hosts = 0;
  const std::string* encoding = nullptr;
  for (const auto& [name, value] : head.headers) {
    if (name == "transfer-encoding") {
      ++encodings;
      encoding = &value;
    }
    if (name == "host") ++hosts;
  }
  if (encodings > 0) {
    // Go ignores Transfer-Encoding on HTTP/1.0 and reads Content-Length; kelp
    // refuses the mix rather than guess where such a body ends.
    if (http_minor == 0) return *refusal = NetHttp("400 Bad Request", "400 Bad Request"), false;
    // Go reads one Transfer-Encoding field, "chunked" alone, and answers 501
    // to anything else (a coding list, a repeated field, "identity").
    if (encodings > 1 || !EqualFold(*encoding, "chunked"))
      return *refusal = NetHttp("501 Not Implemented", "Unsupported transfer encoding"), false;
  }
  if (http_minor >= 1 && hosts == 0)
    return *refusal = NetHttp("400 Bad Request: missing required Host header", "400 Bad Request: missing required Host header"), false;
  if (hosts > 1) return *refusal = NetHttp("400 Bad Request", "400 Bad Request"), false;
  // Go knows one expectation; any other non-empty Expect is a 417.
  const std::string* expect = head.Header("expect");
  if (expect && !expect->empty() && !HasToken(*expect, "100-continue"))
    return *refusal = Refusal{Refusal::Form::kExpectationFailed, "417 Expectation Failed", ""}, false;
  return true;
}

}  // namespace kelp::http
