// A disk's space as Go's stats.fillInDiskStatus reports it (statfs): all is
// blocks × bsize, free is bavail × bsize (the blocks an unprivileged writer
// may still use, not the root-reserved ones), used is all − free. Shared by
// /status in the HTTP worker and VolumeServerStatus and the heartbeat in the
// supervisor.
#pragma once
#include <cstdint>
#include <string>

namespace kelp {

struct DiskStatus {
  bool ok = false;  // statfs succeeded
  uint64_t all = 0, used = 0, free = 0;
  float percent_free = 0, percent_used = 0;  // float32, as Go computes them
};

DiskStatus ReadDiskStatus(const std::string& dir);

}  // namespace kelp
