// Everything of an erasure-coded needle but its data (header, flags, name,
// mime, times, TTL, pairs, CRC), read across the shards' holders with the
// data's CRC verified window by window, so a needle of any size is checked in
// bounded memory. Go reads the whole needle for the same answers (a delete's
// cookie check, VolumeNeedleStatus). Blocking: thread pools and gRPC handler
// threads only.
// (upstream: weed/storage/store_ec.go ReadEcShardNeedle)
#pragma once
#include <cstdint>
#include <string>

#include "common/ec_client/ec_gather.h"
#include "common/needle.h"

namespace kelp {

struct EcNeedleMeta {
  std::string bytes;   // what `needle` points into: the record without its data (v1: whole)
  ParsedNeedle needle;  // data empty; checksum as stored
  uint64_t record_size = 0;  // the record's length on disk
};

// Reads the needle of `site` (its `where` filled in by the supervisor).
// kDeleted: a holder has it deleted. kError: `*error` is Go's text.
EcGathered ReadEcNeedleMeta(EcPeers* peers, const EcNeedleSite& site, EcNeedleMeta* out, std::string* error);

}  // namespace kelp
