#include "worker-http/fid_path.h"

#include <algorithm>

namespace kelp {

std::string PathExt(std::string_view name) {
  for (size_t i = name.size(); i-- > 0;) {
    if (name[i] == '/') break;
    if (name[i] == '.') return std::string(name.substr(i));
  }
  return "";
}

UrlPathParts ParseUrlPath(std::string_view path) {
  UrlPathParts p;
  const auto slashes = std::count(path.begin(), path.end(), '/');
  if (slashes == 3 || slashes == 2) {
    std::string_view rest = path.substr(path.find('/') + 1);
    const size_t s1 = rest.find('/');
    p.vid = std::string(rest.substr(0, s1));
    rest = rest.substr(s1 + 1);
    if (slashes == 3) {
      const size_t s2 = rest.find('/');
      p.fid = std::string(rest.substr(0, s2));
      p.filename = std::string(rest.substr(s2 + 1));
      p.ext = PathExt(p.filename);
    } else {
      p.fid = std::string(rest);
      const size_t dot = p.fid.rfind('.');
      if (dot != std::string::npos && dot > 0) {
        p.ext = p.fid.substr(dot);
        p.fid.resize(dot);
      }
    }
    return p;
  }
  // One slash (or more than three): Go indexes relative to the last slash but
  // slices absolute; with the usual single leading slash both agree.
  const size_t sep = path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/');
  const std::string_view tail = path.substr(sep);
  const size_t comma_rel = tail.rfind(',');
  if (comma_rel == std::string_view::npos || comma_rel == 0) {
    p.vid = std::string(path.substr(std::min(path.size(), sep + 1)));
    p.volume_id_only = true;
    return p;
  }
  const size_t dot_rel = tail.rfind('.');
  const size_t comma = comma_rel, dot = dot_rel;  // used as absolute offsets, as Go does
  if (sep + 1 > comma || comma >= path.size()) {
    p.volume_id_only = true;
    return p;
  }
  p.vid = std::string(path.substr(sep + 1, comma - (sep + 1)));
  if (dot_rel != std::string_view::npos && dot_rel > 0 && dot > comma) {
    p.fid = std::string(path.substr(comma + 1, dot - comma - 1));
    p.ext = std::string(path.substr(dot));
  } else {
    p.fid = std::string(path.substr(comma + 1));
  }
  return p;
}

std::string UploadFidOf(std::string_view path) {
  const size_t comma = path.rfind(',');
  const size_t dot = path.rfind('.');
  const size_t start = comma == std::string_view::npos ? 0 : comma + 1;
  if (dot != std::string_view::npos && (comma == std::string_view::npos || dot > comma)) return std::string(path.substr(start, dot - start));
  return std::string(path.substr(start));
}

}  // namespace kelp
