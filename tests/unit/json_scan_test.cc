// The gjson subset Query filters and projects JSON needles with
// (common/json_scan.h); expectations are Go 4.48's observed answers.
#include <doctest/doctest.h>

#include "common/json_scan.h"

using namespace kelp::json;

namespace {

std::vector<std::string_view> TopLevelValues(std::string_view data) {
  std::vector<std::string_view> out;
  ForEachTopLevelValue(data, [&](std::string_view v) {
    out.push_back(v);
    return true;
  });
  return out;
}

std::string Run(std::string_view data, const std::vector<std::string>& selections, std::string_view field, std::string_view op,
                std::string_view value) {
  std::string out;
  for (const std::string_view line : TopLevelValues(data))
    if (FilterPasses(line, field, op, value)) out += Project(line, selections);
  return out;
}

}  // namespace

TEST_CASE("json scan: lines are top-level values, whatever separates them") {
  CHECK(TopLevelValues("{\"a\":1}{\"a\":2}").size() == 2);
  CHECK(TopLevelValues("{\"a\":{\"b\":5},\"s\":\"12\",\"t\":true}  {\"a\":1} 7 [1]") ==
        std::vector<std::string_view>{"{\"a\":{\"b\":5},\"s\":\"12\",\"t\":true}", "{\"a\":1}", "7", "[1]"});
  CHECK(TopLevelValues("  ,; {\"a\":\"}\"}\n").size() == 1);  // a brace inside a string does not close
  CHECK(TopLevelValues("{\"a\":[1,2").size() == 1);            // unterminated: runs to the end
  CHECK(TopLevelValues("").empty());
  CHECK(TopLevelValues("\"unterminated \\\"").size() == 1);
}

TEST_CASE("json scan: paths pick raw values") {
  const std::string_view v = "{\"a\":{\"b\":5},\"s\":\"1\\\"2\",\"arr\":[10,{\"x\":\"y\"}],\"x.y\":3,\"\":\"empty key\"}";
  CHECK(Get(v, "a.b").raw == "5");
  CHECK(Get(v, "a").raw == "{\"b\":5}");
  CHECK(Get(v, "s").type == Type::kString);
  CHECK(Unescape(Get(v, "s").raw) == "1\"2");
  CHECK(Get(v, "arr.1.x").raw == "\"y\"");
  CHECK(Get(v, "x\\.y").raw == "3");
  CHECK(Get(v, "").raw == "\"empty key\"");
  CHECK(Get(v, "zz").type == Type::kMissing);
  CHECK(Get(v, "arr.9").type == Type::kMissing);
  CHECK(Get("7", "a").type == Type::kMissing);
  CHECK(Unescape("\"\\u00e9\\n\"") == "\xc3\xa9\n");
}

TEST_CASE("json scan: Go's filter and projection") {
  const std::string data = "{\"score\":3}\n{\"score\":12}\n{\"score\":18, \"name\":\"x\"}\n";
  CHECK(Run(data, {"score", "name", "zz"}, "score", ">", "10") == "{score:12,name:,zz:}{score:18,name:\"x\",zz:}");
  CHECK(Run(data, {}, "score", ">=", "3") == "{}{}{}");
  CHECK(Run(data, {"score"}, "score", ">", "100").empty());
  CHECK(Run(data + "{\"score\":0}", {"score"}, "score", "=", "not a number") == "{score:0}");  // ParseFloat's error gives 0
  const std::string mixed = "{\"a\":{\"b\":5},\"s\":\"12\",\"t\":true}  {\"a\":1} 7 [1]";
  CHECK(Run(mixed, {"a.b", "s", "t"}, "a", "", "") == "{a.b:5,s:\"12\",t:true}{a.b:,s:,t:}");
  CHECK(Run(mixed, {"t"}, "t", ">=", "whatever") == "{t:true}");
  CHECK(Run(mixed, {"s"}, "s", ">", "9") == "");  // strings compare as text: "12" < "9"
  CHECK(Run(mixed, {"s"}, "s", "%", "1*") == "{s:\"12\"}");
  CHECK(Run(mixed, {"s"}, "s", "!%", "1?") == "");
  CHECK(Run("{\"f\":false}", {"f"}, "f", "<", "true") == "{f:false}");
  CHECK(Run("{\"f\":false}", {"f"}, "f", ">", "true") == "");
  CHECK(Run("{\"n\":null}", {"n"}, "n", "=", "null") == "");  // null never compares
  CHECK(Run(data, {"score"}, "", "", "") == "");              // an empty field matches only the key ""
}

TEST_CASE("json scan: glob") {
  CHECK(GlobMatch("hello", "h*o"));
  CHECK(GlobMatch("hello", "h?llo"));
  CHECK(GlobMatch("", "*"));
  CHECK_FALSE(GlobMatch("hello", "h?lo"));
  CHECK(GlobMatch("a*b", "a*b"));
}
