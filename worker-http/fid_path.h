// Request paths naming a blob (upstream: weed/server/common.go parseURLPath,
// weed/storage/needle/needle.go ParsePath):
//   /<vid>,<fid>[.ext]   /<vid>/<fid>[.ext]   /<vid>/<fid>/<filename>
// where <fid> is <needle id hex><cookie, 8 hex>[_<delta>].
#pragma once
#include <string>
#include <string_view>

#include "common/file_id.h"
#include "common/status.h"

namespace kelp {

struct UrlPathParts {
  std::string vid, fid, filename, ext;
  bool volume_id_only = false;
};

// Splits the path exactly like Go's parseURLPath, quirks included.
UrlPathParts ParseUrlPath(std::string_view path);


// The fid an upload names: the part after the last ',' up to a later '.'.
std::string UploadFidOf(std::string_view path);

// Go's filepath.Ext: from the last '.' in the final path element.
std::string PathExt(std::string_view name);

}  // namespace kelp
