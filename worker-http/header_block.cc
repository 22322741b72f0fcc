#include "worker-http/header_block.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

#include "worker-http/http_types.h"

namespace kelp::http {
namespace {

bool IsTokenChar(unsigned char c) {
  return c > 0x20 && c < 0x7f && !std::strchr("()<>@,;:\\\"/[]?={}", c);
}

}  // namespace

std::string WireHeaderValue(std::string_view value) {
  std::string out(value);
  for (char& c : out)
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  const size_t first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const size_t last = out.find_last_not_of(" \t");
  return out.substr(first, last - first + 1);
}

bool IsHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return IsTokenChar(static_cast<unsigned char>(c)); });
}

std::string CanonicalHeaderKey(std::string_view name) {
  if (!IsHeaderName(name)) return std::string(name);
  std::string out(name);
  bool upper = true;
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
    else if (!upper && c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    upper = c == '-';
  }
  return out;
}

void AppendHeaderLine(std::string* out, std::string_view name, std::string_view value) {
  if (!IsHeaderName(name)) return;
  out->append(name);
  out->append(": ");
  out->append(WireHeaderValue(value));
  out->append("\r\n");
}

std::string ResponseHead(int status, std::vector<std::pair<std::string, std::string>> headers, const HeadFraming& f) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(StatusText(status)) + "\r\n";
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  bool has_length = false, has_date = false;
  for (const auto& [k, v] : headers) {
    if (!IsHeaderName(k)) continue;
    if (strcasecmp(k.c_str(), "Content-Length") == 0) has_length = true;
    if (strcasecmp(k.c_str(), "Date") == 0) has_date = true;
    AppendHeaderLine(&head, k, v);
  }
  if (!f.keep_alive) head += "Connection: close\r\n";
  if (!has_date) AppendHeaderLine(&head, "Date", f.date);
  if (!has_length && !f.bodiless) head += "Content-Length: " + std::to_string(f.length) + "\r\n";
  head += "\r\n";
  return head;
}

std::string RequestHead(std::string_view method, std::string_view target, std::string_view host,
                        const std::vector<std::pair<std::string, std::string>>& headers, bool with_length,
                        uint64_t length) {
  std::string head;
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  AppendHeaderLine(&head, "Host", host);
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), "Content-Length") == 0) has_length = true;
    AppendHeaderLine(&head, k, v);
  }
  if (with_length && !has_length) head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += "\r\n";
  return head;
}

}  // namespace kelp::http
