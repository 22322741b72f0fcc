// Go's strconv.Quote (fmt's %q of a string or byte slice), for error texts
// that quote what the client sent.
#pragma once
#include <string>
#include <vector>
#include <string_view>

namespace kelp {

// Backslash escapes for quotes, backslashes and control characters (\a \b \f
// \n \r \t \v, else \xNN), \xNN for each byte of invalid UTF-8, \u for the
// non-printable code points kelp knows (C1 controls, U+00AD, U+2028/9, U+FEFF);
// other valid UTF-8 is kept as it is.
std::string GoQuote(std::string_view s);

// Go's %v of an []int: "[1 2 3]".
std::string GoIntList(const std::vector<int>& ids);

}  // namespace kelp
