// The header block of a multipart part, read as Go's textproto.ReadMIMEHeader
// reads it (continuation lines, the checks on names and values, and the error
// texts), so a part header carrying CR, NUL or another control byte is refused
// as Go refuses it.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kelp {

// Reads header lines from body[*pos] through the blank line that ends them and
// moves *pos past it. Names are lower-cased (a name with a space before its
// colon is kept as it is, as Go keeps it); a repeated name keeps its first value.
// A block cut short by the end of the body is "multipart: NextPart: EOF".
Status ReadMimeHeader(std::string_view body, size_t* pos, std::map<std::string, std::string>* headers);

}  // namespace kelp
