#include "worker-grpc/volume_files.h"

#include <unistd.h>

#include "proto/kelp_internal.pb.h"

namespace kelp {

OwnedFd::~OwnedFd() { Reset(); }

void OwnedFd::Reset() {
  if (fd >= 0) close(fd);
  fd = -1;
}

grpc::Status OpenVolumeFiles(SupervisorClient* supervisor, uint32_t vid, VolumeFiles* out) {
  for (int attempt = 0;; ++attempt) {
    kelp_internal::VolumeFileOpen req;
    req.set_volume_id(vid);
    kelp_internal::VolumeFileOpened idx, dat;
    req.set_ext(".idx");
    if (grpc::Status s = supervisor->CallForFd("kelp.OpenTailFile", req, &idx, &out->idx.fd); !s.ok()) return s;
    req.set_ext(".dat");
    if (grpc::Status s = supervisor->CallForFd("kelp.OpenTailFile", req, &dat, &out->dat.fd); !s.ok()) return s;
    if (out->idx.fd < 0 || out->dat.fd < 0)
      return grpc::Status(grpc::StatusCode::UNKNOWN, "not found volume id " + std::to_string(vid));
    // A vacuum committed between the two opens: the files do not belong together.
    if (idx.compaction_revision() != dat.compaction_revision()) {
      out->idx.Reset();
      out->dat.Reset();
      if (attempt < 3) continue;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume " + std::to_string(vid) + " is being vacuumed: try again");
    }
    VolumeFilesView& v = out->view;
    v.dat_fd = out->dat.fd;
    v.idx_fd = out->idx.fd;
    v.version = uint8_t(dat.version());
    v.offset_bytes = int(dat.offset_bytes());
    v.idx_size = idx.idx_size();  // taken first,
    v.dat_size = dat.dat_size();  // so the .dat bound covers every row below it
    v.idx_file_size = idx.idx_file_size();
    v.dat_size_with_idx = idx.dat_size();
    v.first_record = dat.super_block_size();
    v.dat_path = dat.path();
    v.idx_path = idx.path();
    return grpc::Status::OK;
  }
}

}  // namespace kelp
