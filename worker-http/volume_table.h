// The worker's read-only view of the volumes: for each, a read-only .dat fd
// and the mapped index segment the supervisor publishes. Reads need no IPC.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "common/index_segment.h"
#include "common/replica_placement.h"
#include "common/ttl.h"
#include "ipc/channel.h"

namespace kelp {

struct VolumeView {
  VolumeId id = 0;
  std::string collection;
  uint8_t version = 3;
  uint16_t compaction_revision = 0;
  ReplicaPlacement replica_placement;
  Ttl ttl;
  int dat_fd = -1;
  std::string dir;  // the directory of the .dat, symlinks resolved
  IndexSegmentReader segment;
  ~VolumeView();
};

class VolumeTable {
 public:
  // Takes ownership of the message's fds on success.
  Status Attach(ipc::Message& m);
  void Detach(VolumeId id);
  // Maps the new segment; returns the generation now read.
  Result<uint64_t> ReplaceSegment(VolumeId id, int fd);
  const VolumeView* Find(VolumeId id) const;
  const std::map<VolumeId, std::unique_ptr<VolumeView>>& all() const { return volumes_; }

 private:
  std::map<VolumeId, std::unique_ptr<VolumeView>> volumes_;
};

}  // namespace kelp
