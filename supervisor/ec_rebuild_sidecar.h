// Go 4.48's bitrot guard on VolumeEcShardsRebuild: the .ecsum found beside
// the shards decides which inputs may feed Reed-Solomon and whether the
// regenerated shards may replace anything. (upstream:
// weed/storage/erasure_coding/ec_encoder.go; docs/erasure-coding.md §6)
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ec_format/ec_checksums.h"
#include "storage/ec_rebuild.h"
#include "storage/env.h"

namespace kelp {

struct RebuildSidecar {
  EcsumState state = EcsumState::kOff;
  EcChecksumManifest manifest;  // when kOn
};

// The sidecar at "<data base>.ecsum", else "<dir>/<base name>.ecsum" for
// each of `extra_dirs`, judged for a data+parity volume.
RebuildSidecar FindRebuildSidecar(Env* env, const std::string& data_base, const std::vector<std::string>& extra_dirs, int data, int parity);

// Inputs whose size is not their entry's covered size: condemned unread.
std::vector<int> InputsOfWrongSize(const EcChecksumManifest& m, const std::map<int, int64_t>& sizes);

// The shards of `inputs` whose checksums differ from their entry's. Shards
// without an entry, or without checksums here, pass.
std::vector<int> InputsFailingChecksums(const EcChecksumManifest& m, const std::map<int, int64_t>& inputs, const EcShardChecksumLists& crcs);

// Blocks of `crcs` that differ from shard's entry, a missing or extra block
// counting as one; 0 when the sidecar has no entry for the shard.
size_t DifferingBlocks(const EcChecksumManifest& m, int shard, const std::vector<uint32_t>& crcs);

}  // namespace kelp
