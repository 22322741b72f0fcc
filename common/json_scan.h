// Just enough of gjson for Query over JSON needles (upstream: weed/query/json,
// github.com/tidwall/gjson as Go uses it): a needle's bytes are a run of
// top-level JSON values ("lines", whatever separates them), and a path picks
// a value out of one by keys, dotted, with array indices and `\.` escapes.
// Values are returned as their raw text; nothing is copied or validated
// beyond finding where each value ends. Malformed input never reads out of
// bounds: an unterminated value runs to the end of the data.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kelp::json {

enum class Type { kMissing, kString, kNumber, kTrue, kFalse, kNull, kObject, kArray };

struct Value {
  Type type = Type::kMissing;
  std::string_view raw;  // the value's text, quotes and all
};

// The top-level values of `data` in order; bytes that start no value are
// skipped. `visit` returning false stops the walk.
void ForEachTopLevelValue(std::string_view data, const std::function<bool(std::string_view)>& visit);

// The value at `path` inside `value` (an object or array), or kMissing.
Value Get(std::string_view value, std::string_view path);

// A string value's text with its escapes resolved (\uXXXX as UTF-8).
std::string Unescape(std::string_view raw_string);

// gjson's wildcard match: `*` any run, `?` one character.
bool GlobMatch(std::string_view text, std::string_view pattern);

// Go's Query filter on one line: `field` `operand` `value` (an empty operand
// tests that the field exists).
bool FilterPasses(std::string_view line, std::string_view field, std::string_view operand, std::string_view value);

// Go's projection of one passing line: {sel:raw,...}, an empty raw for a
// missing value, the selection text as the key.
std::string Project(std::string_view line, const std::vector<std::string>& selections);

}  // namespace kelp::json
