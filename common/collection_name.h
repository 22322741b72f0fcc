// A collection becomes part of a file name ("<collection>_<vid>.dat"), so it
// must be one path element: not "." or "..", no '/', '\' or NUL. Go checks
// this only when copying volumes; kelp checks it wherever a collection
// reaches the disk, whoever sent it.
#pragma once
#include <string_view>

namespace kelp {

inline bool IsSafeCollectionName(std::string_view c) {
  return c != "." && c != ".." && c.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
}

// Go's checkVolumeFileExtension: a dot, then one or more ASCII letters or
// digits (".dat", ".ec07"; never a path).
inline bool IsVolumeFileExtension(std::string_view ext) {
  if (ext.size() < 2 || ext[0] != '.') return false;
  for (char c : ext.substr(1))
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

}  // namespace kelp
