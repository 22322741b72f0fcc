// The .vif sidecar: the VolumeInfo protobuf message as protojson text
// (upstream: weed/storage/volume_info/volume_info.go, message VolumeInfo in
// weed/pb/volume_server.proto). int64/uint64 fields are JSON strings.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace kelp {

// EcShardConfig: an erasure-coded volume's ratio, the encode run's identity
// (wall clock ns at encode) and, from Go 4.48, the uniform block size (0: the
// legacy layout).
struct EcShardConfigInfo {
  uint32_t data_shards = 0;
  uint32_t parity_shards = 0;
  int64_t encode_ts_ns = 0;
  int64_t block_size = 0;
};

struct VolumeInfo {
  uint32_t version = 0;
  std::string replication;
  uint32_t bytes_offset = 0;
  int64_t dat_file_size = 0;
  uint64_t expire_at_sec = 0;
  bool read_only = false;
  bool read_only_can_delete = false;
  std::optional<EcShardConfigInfo> ec_shard_config;
  bool has_remote_files = false;  // tiered volumes are not served by kelp yet
  std::string original_json;       // fields kelp does not model survive a rewrite
};

// Missing file: ok with *exists = false.
Result<VolumeInfo> LoadVolumeInfo(const std::string& path, bool* exists);
std::string EncodeVolumeInfo(const VolumeInfo& info);
Result<VolumeInfo> DecodeVolumeInfo(const std::string& text);

}  // namespace kelp
