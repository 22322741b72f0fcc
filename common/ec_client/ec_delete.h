// Deleting a needle of an erasure-coded volume across servers (after reading
// it, common/ec_client/ec_needle_meta.h): the delete is journaled by a holder
// of the shard the record starts in, or, when that shard has no holder, of
// any other shard. Blocking: thread pools and gRPC handler threads only.
// (upstream: weed/storage/store_ec_delete.go; docs/erasure-coding.md §11)
#pragma once
#include <cstdint>
#include <string>

#include "common/ec_client/ec_gather.h"
#include "common/needle.h"

namespace kelp {

// The size Go reports for a deleted EC needle whose header size is `size`:
// Go 4.48 reads (and counts) the intervals of the record's length taken as a
// size again, ActualSize(ActualSize(size)), past the record's end.
inline uint64_t GoEcDeletedSize(uint32_t size, uint8_t version) { return ActualSize(uint32_t(ActualSize(size, version)), version); }

// The shard that holds the record's first byte (-1: none).
int EcPrimaryShard(const kelp_internal::EcNeedleLocated& where);

// Journals the delete on one holder: those of `primary` in turn, else those of
// each other shard. "" when a holder took it, else Go's text.
std::string DeleteOnEcHolders(EcPeers* peers, const std::string& master, VolumeId vid, const std::string& collection, NeedleId id,
                              uint32_t version, int primary);

}  // namespace kelp
