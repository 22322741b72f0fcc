#include "common/ec_format/ec_checksums.h"

#include <set>

#include "common/bytes.h"
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

const EcShardChecksumEntry* EcChecksumManifest::Find(uint32_t shard) const {
  for (const EcShardChecksumEntry& e : shards)
    if (e.shard == shard) return &e;
  return nullptr;
}

namespace {

uint32_t LittleEndian32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
}

std::string Hex(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "%#x", v);
  return buf;
}

}  // namespace

Result<EcChecksumManifest> ParseEcsum(std::string_view bytes, const std::string& path) {
  const std::string prefix = "bitrot sidecar " + path + " ";
  if (bytes.size() < kEcsumHeaderSize)
    return Status::Corruption(prefix + "too short (" + std::to_string(bytes.size()) + " bytes)");
  const auto* h = reinterpret_cast<const uint8_t*>(bytes.data());
  if (GetU32(h) != kEcsumMagic) return Status::Corruption(prefix + "bad magic " + Hex(GetU32(h)));
  const uint16_t version = uint16_t(h[4] << 8 | h[5]);
  if (version != kEcsumFormatVersion) return Status::Corruption(prefix + "unsupported format version " + std::to_string(version));
  const uint32_t length = GetU32(h + 6), want_crc = GetU32(h + 10);
  const std::string_view payload = bytes.substr(kEcsumHeaderSize);
  if (payload.size() != length)
    return Status::Corruption(prefix + "length mismatch: header " + std::to_string(length) + ", actual " + std::to_string(payload.size()));
  if (const uint32_t crc = Crc32c(payload.data(), payload.size()); crc != want_crc)
    return Status::Corruption(prefix + "self-integrity CRC mismatch: header " + Hex(want_crc) + ", computed " + Hex(crc));
  volume_server_pb::EcBitrotProtection p;
  if (!p.ParseFromArray(payload.data(), int(payload.size()))) return Status::Corruption(prefix + "payload is not an EcBitrotProtection");
  EcChecksumManifest m;
  m.algorithm = uint32_t(p.algorithm());
  m.block_size = p.block_size();
  m.generation = p.generation();
  m.has_config = p.has_ec_shard_config();
  m.data_shards = p.ec_shard_config().data_shards();
  m.parity_shards = p.ec_shard_config().parity_shards();
  for (const auto& s : p.shards()) {
    EcShardChecksumEntry e;
    e.shard = s.shard_id();
    e.covered_size = s.covered_size();
    const std::string& packed = s.block_crc32c();
    e.crc_bytes = packed.size();
    for (size_t at = 0; at + 4 <= packed.size(); at += 4) e.block_crcs.push_back(LittleEndian32(packed.data() + at));
    m.shards.push_back(std::move(e));
  }
  return m;
}

Status ValidateEcsumManifest(const EcChecksumManifest& m, int data, int parity) {
  if (m.algorithm != uint32_t(volume_server_pb::CHECKSUM_CRC32C))
    return Status::Corruption("unsupported checksum algorithm " + std::to_string(m.algorithm));
  const uint32_t b = m.block_size;
  if (b < kEcsumMinBlock || b > kEcsumMaxBlock || (b & (b - 1)) != 0)
    return Status::Corruption("invalid block_size " + std::to_string(b) + " (must be a power-of-two multiple of 1 MiB, at most " +
                              std::to_string(kEcsumMaxBlock) + ")");
  const size_t total = size_t(data + parity);
  if (m.shards.size() != total)
    return Status::Corruption("incomplete manifest: " + std::to_string(m.shards.size()) + " shard entries, expected " + std::to_string(total));
  std::set<uint32_t> seen;
  for (const EcShardChecksumEntry& e : m.shards) {
    if (e.shard >= total) return Status::Corruption("shard id " + std::to_string(e.shard) + " out of range [0," + std::to_string(total) + ")");
    if (!seen.insert(e.shard).second) return Status::Corruption("duplicate shard id " + std::to_string(e.shard));
    if (e.covered_size <= 0)
      return Status::Corruption("shard " + std::to_string(e.shard) + " has non-positive covered_size " + std::to_string(e.covered_size));
    const uint64_t blocks = (uint64_t(e.covered_size) + b - 1) / b;
    if (e.crc_bytes != 4 * blocks)
      return Status::Corruption("shard " + std::to_string(e.shard) + " crc count mismatch: " + std::to_string(e.crc_bytes) +
                                " bytes, expected " + std::to_string(4 * blocks) + " (covered_size=" + std::to_string(e.covered_size) +
                                " block_size=" + std::to_string(b) + ")");
  }
  return Status::Ok();
}

EcsumState EvaluateEcsum(const EcsumFile& file, int data, int parity, EcChecksumManifest* manifest, std::string* why) {
  if (!file.present) return EcsumState::kOff;
  if (file.unreadable) {
    *why = "bitrot sidecar " + file.path + " is unreadable";
    return EcsumState::kInvalid;
  }
  auto parsed = ParseEcsum(file.bytes, file.path);
  if (!parsed.ok()) {
    *why = parsed.status().message();
    return EcsumState::kInvalid;
  }
  const EcChecksumManifest& m = parsed.value();
  // OSS writes generation 0 only; a sidecar for another generation or ratio
  // describes other shards, which is not corruption.
  if (m.generation != 0 || !m.has_config || m.data_shards != uint32_t(data) || m.parity_shards != uint32_t(parity)) return EcsumState::kOff;
  if (Status s = ValidateEcsumManifest(m, data, parity); !s.ok()) {
    *why = s.message();
    return EcsumState::kInvalid;
  }
  *manifest = std::move(parsed.value());
  return EcsumState::kOn;
}

}  // namespace kelp
