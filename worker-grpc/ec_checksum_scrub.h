// The CHECKSUM mode of ScrubEcVolume: every local shard of an erasure-coded
// volume against its .ecsum, as Go 4.48 checks it. Read-only: it reports,
// never repairs. (upstream: weed/storage/erasure_coding/ec_volume_scrub.go;
// docs/erasure-coding.md §14)
//
// - Each local shard, in id order: a shard without an entry is an error; a
//   size (at mount) other than the covered size is broken; otherwise every
//   checksum block is read and its CRC-32C compared. A read failure stops
//   that shard; a mismatch is reported per block and the scan goes on.
// - More broken shards than parity shards: the sidecar is suspect, and that
//   one error replaces the rest; no shard is flagged.
// - With at least `data` clean local shards, each broken shard is rebuilt
//   from clean ones and compared with its bytes: a match means the sidecar is
//   stale and the shard is cleared. A shard whose size is not the covered one
//   stays broken (Go compares what it has, and would clear a shard cut short
//   at a block's end). The comparison runs in steps of 1 MiB, so
//   it holds data+2 MiB whatever the checksum block.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/ec_format/ec_checksums.h"

namespace kelp {

struct LocalEcShard {
  int shard = 0;
  int fd = -1;
  int64_t size = 0;  // at mount, as Go's shard.Size()
};

struct EcChecksumScrub {
  std::vector<int> broken;  // ascending
  std::vector<std::string> errors;
};

// `shards` ascending by id. `state` and `manifest` come from EvaluateEcsum.
EcChecksumScrub ScrubEcShardChecksums(uint32_t volume_id, EcsumState state, const EcChecksumManifest& manifest,
                                      const std::vector<LocalEcShard>& shards, int data, int parity);

}  // namespace kelp
