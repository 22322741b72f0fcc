#include "supervisor/ec_checksums.h"

#include "common/crc32c.h"
#include "proto/volume_server.pb.h"

namespace kelp {

std::string EncodeEcsum(const EcShardConfigInfo& config, uint32_t checksum_block, uint64_t shard_size,
                        const std::vector<std::vector<uint32_t>>& crcs, const std::string& encode_uuid) {
  volume_server_pb::EcBitrotProtection p;
  p.set_algorithm(volume_server_pb::CHECKSUM_CRC32C);
  p.set_block_size(checksum_block);
  auto* c = p.mutable_ec_shard_config();
  c->set_data_shards(config.data_shards);
  c->set_parity_shards(config.parity_shards);
  c->set_block_size(config.block_size);  // Go leaves the encode time out of the sidecar
  for (size_t s = 0; s < crcs.size(); s++) {
    auto* shard = p.add_shards();
    shard->set_shard_id(uint32_t(s));
    shard->set_covered_size(int64_t(shard_size));
    std::string packed;
    for (uint32_t v : crcs[s]) {
      const char le[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
      packed.append(le, 4);
    }
    shard->set_block_crc32c(packed);
  }
  p.set_encode_uuid(encode_uuid);
  std::string payload;
  p.SerializeToString(&payload);
  const uint32_t len = uint32_t(payload.size()), crc = Crc32c(payload.data(), payload.size());
  const char header[kEcsumHeaderSize] = {char(kEcsumMagic >> 24), char(kEcsumMagic >> 16), char(kEcsumMagic >> 8), char(kEcsumMagic),
                                         char(kEcsumFormatVersion >> 8), char(kEcsumFormatVersion),
                                         char(len >> 24), char(len >> 16), char(len >> 8), char(len),
                                         char(crc >> 24), char(crc >> 16), char(crc >> 8), char(crc)};
  return std::string(header, kEcsumHeaderSize) + payload;
}

}  // namespace kelp
