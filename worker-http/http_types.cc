#include "worker-http/http_types.h"

#include <strings.h>
#include <algorithm>
#include <cctype>

namespace kelp::http {

const std::string* Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::string Request::HeaderOr(std::string_view name, std::string fallback) const {
  const std::string* v = Header(name);
  return v ? *v : std::move(fallback);
}

namespace {
template <typename F>
void ForEachQueryPair(std::string_view q, F&& f) {
  size_t start = 0;
  while (start <= q.size()) {
    const size_t amp = q.find('&', start);
    std::string_view pair = q.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      if (f(UrlDecode(pair.substr(0, eq), true), eq == std::string_view::npos ? std::string() : UrlDecode(pair.substr(eq + 1), true)))
        return;
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
}
}  // namespace

std::string Request::Query(std::string_view name) const {
  std::string out;
  ForEachQueryPair(query, [&](const std::string& k, const std::string& v) {
    if (k == name) {
      out = v;
      return true;
    }
    return false;
  });
  return out;
}

bool Request::HasQuery(std::string_view name) const {
  bool found = false;
  ForEachQueryPair(query, [&](const std::string& k, const std::string&) { return found = (k == name); });
  return found;
}

std::vector<std::pair<std::string, std::string>> Request::QueryPairs() const {
  std::vector<std::pair<std::string, std::string>> out;
  ForEachQueryPair(query, [&](const std::string& k, const std::string& v) {
    out.emplace_back(k, v);
    return false;
  });
  return out;
}

std::string QueryEscape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out.push_back(char(c));
    else if (c == ' ') out.push_back('+');
    else { out.push_back('%'); out.push_back(kHex[c >> 4]); out.push_back(kHex[c & 15]); }
  }
  return out;
}

std::string EncodeQuery(std::multimap<std::string, std::string> values) {
  std::string out;
  for (const auto& [k, v] : values) {
    if (!out.empty()) out += '&';
    out += QueryEscape(k) + "=" + QueryEscape(v);
  }
  return out;
}

std::string UrlDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        out.push_back(char(hi << 4 | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string_view StatusText(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Request Entity Too Large";
    case 416: return "Requested Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

}  // namespace kelp::http

namespace kelp::http {

namespace {
bool SameName(std::string_view a, std::string_view b) { return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0; }
}  // namespace

bool Response::Has(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return SameName(h.first, name); });
}

void Response::Erase(std::string_view name) {
  std::erase_if(headers, [&](const auto& h) { return SameName(h.first, name); });
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '\'': out += "&#39;"; break;
      case '"': out += "&#34;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace kelp::http
