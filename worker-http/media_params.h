// Media-type parameters as Go's mime.ParseMediaType reads them, for the
// Content-Type and Content-Disposition of uploads: token and quoted values,
// MSIE's unescaped backslashes kept, RFC 2231 extended (`filename*=utf-8''…`)
// and continued (`name*0`, `name*1*`) values decoded, trailing ';' ignored.
#pragma once
#include <map>
#include <string>
#include <string_view>

namespace kelp {

// `media_type` is lower-cased, `params` keys too. Returns false where Go
// returns an error (then `params` is empty).
bool ParseMediaParams(std::string_view value, std::string* media_type, std::map<std::string, std::string>* params);
// The same, with Go's error text when it fails ("mime: no media type", "mime:
// invalid media parameter", ...). As in Go, a valid media type whose
// parameters do not parse is still returned in `media_type`.
bool ParseMediaParams(std::string_view value, std::string* media_type, std::map<std::string, std::string>* params,
                      std::string* error);

}  // namespace kelp
