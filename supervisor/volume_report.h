// What the master was last told about each volume, so a pulse carries only
// what changed (the digest protocol of SeaweedFS 4.48's heartbeat).
//
// Every report names a digest: the XOR of one hash per volume held, over the
// fields of its VolumeInformationMessage as the master stores them. The master
// hashes its own copy the same way and asks for the whole list when the two
// disagree. Until a master says it compares digests (volume_digest_supported
// in a HeartbeatResponse) every report carries the whole list; after that a
// report carries the volumes whose hash changed (changed_volumes) and names
// the volumes that left (deleted_volumes).
//
// Used on the supervisor's loop thread only.
#pragma once
#include <cstdint>
#include <map>
#include <utility>

#include "proto/master.pb.h"

namespace kelp {

// The master's hash of one volume's report (docs/architecture.md): xxHash64 of
// the fixed fields, folded with xxHash64 of the modification time and of the
// three strings. Two reports hash alike only if the master would store them
// alike.
uint64_t VolumeReportHash(const master_pb::VolumeInformationMessage& m);

class VolumeReportState {
 public:
  // A new session: the master may know nothing, and has not said it compares digests.
  void Reset();
  // The master compares digests: reports may carry only changes.
  void AcceptDeltas();
  // The master asked for the whole list: the next report carries it.
  void RequestFullList();
  // Turns a heartbeat that names every volume held (`volumes`) into the one to
  // send: the digest always; the whole list, or the changes and departures.
  void Shape(master_pb::Heartbeat* hb);

  bool deltas_accepted() const { return deltas_accepted_; }

 private:
  struct Reported {
    uint64_t hash = 0;
    uint64_t pass = 0;
    master_pb::VolumeShortInformationMessage short_info;
  };
  using Key = std::pair<uint32_t, uint32_t>;  // (disk id, volume id): one copy
  std::map<Key, Reported> last_;
  bool deltas_accepted_ = false;
  bool full_needed_ = true;
  uint64_t pass_ = 0;
};

}  // namespace kelp
