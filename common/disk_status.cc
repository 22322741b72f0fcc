#include "common/disk_status.h"

#include <sys/vfs.h>

namespace kelp {

DiskStatus ReadDiskStatus(const std::string& dir) {
  DiskStatus d;
  struct statfs fs;
  if (statfs(dir.c_str(), &fs) != 0) return d;
  d.ok = true;
  d.all = uint64_t(fs.f_blocks) * uint64_t(fs.f_bsize);
  d.free = uint64_t(fs.f_bavail) * uint64_t(fs.f_bsize);
  d.used = d.all - d.free;
  d.percent_free = float(double(d.free) / double(d.all) * 100);
  d.percent_used = float(double(d.used) / double(d.all) * 100);
  return d;
}

}  // namespace kelp
