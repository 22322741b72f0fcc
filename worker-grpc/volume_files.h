// A mounted volume's .idx and .dat as the gRPC worker reads them for tails,
// incremental copies and needle streams: read-only descriptors the
// supervisor opens, and the sizes that bound what is whole.
#pragma once
#include <grpcpp/grpcpp.h>

#include <cstdint>

#include "common/appended_since.h"
#include "worker-grpc/supervisor_client.h"

namespace kelp {

struct OwnedFd {
  int fd = -1;
  OwnedFd() = default;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd();
  void Reset();
};

// Both files from one compaction revision; `view` refers to the descriptors.
struct VolumeFiles {
  OwnedFd idx, dat;
  VolumeFilesView view;
};

// Go's "not found volume id N" (UNKNOWN) when the volume is not mounted.
grpc::Status OpenVolumeFiles(SupervisorClient* supervisor, uint32_t vid, VolumeFiles* out);

}  // namespace kelp
