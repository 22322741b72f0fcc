#include "worker-http/mime_header.h"

#include <cstring>

#include "common/go_quote.h"

namespace kelp {
namespace {

const Status kEof = Status::Invalid("multipart: NextPart: EOF");

bool IsTokenByte(unsigned char c) {
  return c > 0x20 && c < 0x7f && !std::strchr("\"(),/:;<=>?@[\\]{}", c);
}

// Go's validHeaderValueByte: HTAB, SP, visible ASCII and obs-text.
bool IsValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string_view TrimSpaceTab(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One line without its "\n" or "\r\n"; false at the end of the body.
bool ReadLine(std::string_view body, size_t* pos, std::string_view* line) {
  const size_t eol = body.find('\n', *pos);
  if (eol == std::string_view::npos) return false;
  *line = body.substr(*pos, eol - *pos);
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  *pos = eol + 1;
  return true;
}

bool StartsWithBlank(std::string_view body, size_t pos) {
  return pos < body.size() && (body[pos] == ' ' || body[pos] == '\t');
}

}  // namespace

Status ReadMimeHeader(std::string_view body, size_t* pos, std::map<std::string, std::string>* headers) {
  std::string_view line;
  if (StartsWithBlank(body, *pos)) {
    if (!ReadLine(body, pos, &line)) return kEof;
    if (line.size() > 80) return Status::Invalid("multipart: message too large");
    return Status::Invalid("malformed MIME header initial line: " + GoQuote(line));
  }
  for (;;) {
    if (!ReadLine(body, pos, &line)) return kEof;
    if (line.empty()) return Status::Ok();
    if (line.find(':') == std::string_view::npos)
      return Status::Invalid("malformed MIME header: missing colon: " + GoQuote(line));
    // Continuation lines join the first with one space each.
    std::string kv(TrimSpaceTab(line));
    while (StartsWithBlank(body, *pos)) {
      while (StartsWithBlank(body, *pos)) ++*pos;
      if (!ReadLine(body, pos, &line)) return kEof;
      kv += ' ';
      kv += TrimSpaceTab(line);
    }
    const size_t colon = kv.find(':');
    const std::string_view name = std::string_view(kv).substr(0, colon);
    const std::string_view value = std::string_view(kv).substr(colon + 1);
    bool valid = !name.empty();
    for (char c : name) valid = valid && (IsTokenByte(static_cast<unsigned char>(c)) || c == ' ');
    for (char c : value) valid = valid && IsValueByte(static_cast<unsigned char>(c));
    if (!valid) return Status::Invalid("malformed MIME header line: " + GoQuote(kv));
    std::string lower(name);
    for (char& c : lower) c = char(tolower(static_cast<unsigned char>(c)));
    headers->emplace(std::move(lower), std::string(value.substr(std::min(value.find_first_not_of(" \t"), value.size()))));
  }
}

}  // namespace kelp
