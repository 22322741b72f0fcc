// Go's Request.ParseForm, which Go's write handler runs before anything else:
// the Content-Type must parse (mime.ParseMediaType), the query must parse as
// url.ParseQuery parses it, and a form-urlencoded body is read as a form, so
// that its values come before the query's and the needle stores no data.
#pragma once
#include <string>
#include <string_view>

#include "common/status.h"
#include "worker-http/http_types.h"

namespace kelp {

// Go's url.ParseQuery error for `query` ("" when it parses): a bad % escape,
// a ';' separator, more than 10,000 parameters.
std::string GoQueryError(std::string_view query);

// Applies ParseForm to a POST or PUT: an error is Go's 400 text. A
// form-urlencoded body is taken out of `r->body` and put before `r->query`.
Status ApplyWriteForm(http::Request* r);

}  // namespace kelp
