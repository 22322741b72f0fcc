#include "common/json_scan.h"

#include <cctype>
#include <cstdlib>
#include <optional>

namespace kelp::json {
namespace {

bool StartsValue(char c) {
  return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

// The end of the string whose opening quote is at `at` (one past the
// closing quote, or the end of the data).
size_t StringEnd(std::string_view d, size_t at) {
  for (size_t i = at + 1; i < d.size(); ++i) {
    if (d[i] == '\\') ++i;
    else if (d[i] == '"') return i + 1;
  }
  return d.size();
}

// The end of the value that starts at `at`.
size_t ValueEnd(std::string_view d, size_t at) {
  const char c = d[at];
  if (c == '"') return StringEnd(d, at);
  if (c == '{' || c == '[') {
    int depth = 0;
    for (size_t i = at; i < d.size(); ++i) {
      if (d[i] == '"') {
        i = StringEnd(d, i) - 1;
      } else if (d[i] == '{' || d[i] == '[') {
        ++depth;
      } else if (d[i] == '}' || d[i] == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return d.size();
  }
  size_t i = at + 1;
  if (c == '-' || (c >= '0' && c <= '9')) {
    while (i < d.size() && (std::isdigit(static_cast<unsigned char>(d[i])) || d[i] == '.' || d[i] == 'e' || d[i] == 'E' || d[i] == '+' ||
                            d[i] == '-'))
      ++i;
    return i;
  }
  while (i < d.size() && std::isalpha(static_cast<unsigned char>(d[i]))) ++i;
  return i;
}

Type TypeOf(std::string_view raw) {
  if (raw.empty()) return Type::kMissing;
  switch (raw[0]) {
    case '"': return Type::kString;
    case '{': return Type::kObject;
    case '[': return Type::kArray;
    case 't': return Type::kTrue;
    case 'f': return Type::kFalse;
    case 'n': return Type::kNull;
    default: return Type::kNumber;
  }
}

size_t SkipSpace(std::string_view d, size_t i) {
  while (i < d.size() && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) ++i;
  return i;
}

// The member `key` of an object, or nothing.
std::optional<std::string_view> Member(std::string_view obj, std::string_view key) {
  size_t i = SkipSpace(obj, 1);
  while (i < obj.size() && obj[i] != '}') {
    if (obj[i] != '"') return std::nullopt;
    const size_t kend = StringEnd(obj, i);
    const std::string name = Unescape(obj.substr(i, kend - i));
    i = SkipSpace(obj, kend);
    if (i >= obj.size() || obj[i] != ':') return std::nullopt;
    i = SkipSpace(obj, i + 1);
    if (i >= obj.size() || !StartsValue(obj[i])) return std::nullopt;
    const size_t vend = ValueEnd(obj, i);
    if (name == key) return obj.substr(i, vend - i);
    i = SkipSpace(obj, vend);
    if (i < obj.size() && obj[i] == ',') i = SkipSpace(obj, i + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> Element(std::string_view arr, size_t index) {
  size_t i = SkipSpace(arr, 1);
  for (size_t n = 0; i < arr.size() && arr[i] != ']'; ++n) {
    if (!StartsValue(arr[i])) return std::nullopt;
    const size_t vend = ValueEnd(arr, i);
    if (n == index) return arr.substr(i, vend - i);
    i = SkipSpace(arr, vend);
    if (i < arr.size() && arr[i] == ',') i = SkipSpace(arr, i + 1);
  }
  return std::nullopt;
}

std::vector<std::string> PathComponents(std::string_view path) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\' && i + 1 < path.size()) out.back() += path[++i];
    else if (path[i] == '.') out.emplace_back();
    else out.back() += path[i];
  }
  return out;
}

void AppendUtf8(std::string* out, unsigned cp) {
  if (cp < 0x80) {
    *out += char(cp);
  } else if (cp < 0x800) {
    *out += char(0xC0 | (cp >> 6));
    *out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += char(0xE0 | (cp >> 12));
    *out += char(0x80 | ((cp >> 6) & 0x3F));
    *out += char(0x80 | (cp & 0x3F));
  } else {
    *out += char(0xF0 | (cp >> 18));
    *out += char(0x80 | ((cp >> 12) & 0x3F));
    *out += char(0x80 | ((cp >> 6) & 0x3F));
    *out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace

void ForEachTopLevelValue(std::string_view data, const std::function<bool(std::string_view)>& visit) {
  size_t i = 0;
  while (i < data.size()) {
    if (!StartsValue(data[i])) {
      ++i;
      continue;
    }
    const size_t end = ValueEnd(data, i);
    if (!visit(data.substr(i, end - i))) return;
    i = end;
  }
}

Value Get(std::string_view value, std::string_view path) {
  std::string_view cur = value;
  for (const std::string& part : PathComponents(path)) {
    std::optional<std::string_view> next;
    const Type t = TypeOf(cur);
    if (t == Type::kObject) {
      next = Member(cur, part);
    } else if (t == Type::kArray && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos) {
      next = Element(cur, std::strtoul(part.c_str(), nullptr, 10));
    }
    if (!next) return {};
    cur = *next;
  }
  return {TypeOf(cur), cur};
}

std::string Unescape(std::string_view raw) {
  std::string out;
  const size_t end = raw.size() >= 2 && raw.back() == '"' ? raw.size() - 1 : raw.size();
  for (size_t i = raw.empty() || raw[0] != '"' ? 0 : 1; i < end; ++i) {
    if (raw[i] != '\\' || i + 1 >= end) {
      out += raw[i];
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        if (i + 4 >= end) {  // too short for four hex digits: kept as it is
          out += 'u';
          break;
        }
        const unsigned cp = unsigned(std::strtoul(std::string(raw.substr(i + 1, 4)).c_str(), nullptr, 16));
        AppendUtf8(&out, cp);
        i += 4;
        break;
      }
      default: out += e;
    }
  }
  return out;
}

bool GlobMatch(std::string_view text, std::string_view pattern) {
  size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++t, ++p;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool FilterPasses(std::string_view line, std::string_view field, std::string_view op, std::string_view want) {
  const Value v = Get(line, field);
  if (v.type == Type::kMissing) return false;
  if (op.empty()) return true;
  switch (v.type) {
    case Type::kString: {
      const std::string s = Unescape(v.raw);
      const int c = std::string_view(s).compare(want);
      if (op == "=") return c == 0;
      if (op == "!=") return c != 0;
      if (op == "<") return c < 0;
      if (op == "<=") return c <= 0;
      if (op == ">") return c > 0;
      if (op == ">=") return c >= 0;
      if (op == "%") return GlobMatch(s, want);
      if (op == "!%") return !GlobMatch(s, want);
      return false;
    }
    case Type::kNumber: {
      const double n = std::strtod(std::string(v.raw).c_str(), nullptr);
      char* end = nullptr;
      const std::string w(want);
      double r = std::strtod(w.c_str(), &end);
      if (w.empty() || *end != '\0') r = 0;  // Go's ParseFloat error gives 0
      if (op == "=") return n == r;
      if (op == "!=") return n != r;
      if (op == "<") return n < r;
      if (op == "<=") return n <= r;
      if (op == ">") return n > r;
      if (op == ">=") return n >= r;
      return false;
    }
    case Type::kTrue:
      if (op == "=") return want == "true";
      if (op == "!=") return want != "true";
      if (op == ">") return want == "false";
      return op == ">=";
    case Type::kFalse:
      if (op == "=") return want == "false";
      if (op == "!=") return want != "false";
      if (op == "<") return want == "true";
      return op == "<=";
    default:
      return false;
  }
}

std::string Project(std::string_view line, const std::vector<std::string>& selections) {
  std::string out = "{";
  for (size_t i = 0; i < selections.size(); ++i) {
    if (i) out += ',';
    out += selections[i];
    out += ':';
    out += Get(line, selections[i]).raw;
  }
  out += '}';
  return out;
}

}  // namespace kelp::json
