// The bytes of one needle record of an erasure-coded volume, gathered from
// wherever its shards are: local shards by pread on descriptors the
// supervisor handed over, other shards from their holders with
// VolumeEcShardRead, and any piece no holder serves rebuilt with Reed-Solomon
// from `data` other shards. Blocking: runs on the worker's thread pool.
// (upstream: weed/storage/store_ec.go readEcShardIntervals; docs/erasure-coding.md §15)
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/ec_layout.h"
#include "common/types.h"
#include "proto/kelp_internal.pb.h"
#include "common/ec_client/ec_peers.h"

namespace kelp {

// A local shard's read-only descriptor, closed when the last read using it ends.
struct OwnedShardFd {
  int fd;
  explicit OwnedShardFd(int f) : fd(f) {}
  OwnedShardFd(const OwnedShardFd&) = delete;
  OwnedShardFd& operator=(const OwnedShardFd&) = delete;
  ~OwnedShardFd();
};

// Where one needle's record is: the supervisor's answer, and the local shards
// opened for it. Filled on the loop, then only read (from any thread).
struct EcNeedleSite {
  std::string master;  // the master's HTTP address, for the holders' lookup
  VolumeId vid = 0;
  NeedleId id = 0;
  kelp_internal::EcNeedleLocated where;
  std::map<int, std::shared_ptr<const OwnedShardFd>> held;  // keeps local_fd's descriptors open
  std::map<int, int> local_fd;                              // shard -> descriptor
};

enum class EcGathered { kOk, kDeleted, kError };

// Record bytes [offset, offset + length) into `out`. kDeleted: a holder has
// the needle deleted. kError: `*error` is Go's text.
EcGathered GatherRecordRange(EcPeers* peers, const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out,
                             std::string* error);

// A scrub's read of the whole record (ScrubEcVolume FULL and READS): each
// piece from a local shard, else from its holders. A piece nobody serves is
// noted in `missed` with Go's text; FULL (`rebuild` false) stops there, READS
// rebuilds the piece from other shards and goes on (a failed rebuild stops it,
// with `*error` set). A holder that has the needle deleted serves zeros.
// Returns the bytes gathered into `out`, a prefix of the record.
struct EcMissedPiece {
  EcInterval piece;
  size_t index = 0;  // among the record's pieces
  std::string error;
};
size_t GatherRecordForScrub(EcPeers* peers, const EcNeedleSite& site, uint64_t length, bool rebuild, uint8_t* out,
                            std::vector<EcMissedPiece>* missed, std::string* error);

// The same range when every piece of it is on a local shard: a pread each,
// nothing on the network, nothing rebuilt (cheap enough for an event loop,
// like a regular volume's read). False when a piece is elsewhere or a read
// fails; the caller then gathers on its thread pool.
bool GatherLocalRange(const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out);

}  // namespace kelp
