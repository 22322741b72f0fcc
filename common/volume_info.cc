#include "common/volume_info.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace kelp {

namespace {

// Reads an integer field the way protojson accepts it: a JSON integer, or a
// decimal string (how 64-bit fields are written). Out-of-range values, floats
// and anything else are refused instead of converted.
template <typename T>
bool IntField(const nlohmann::json& j, const char* key, T* out) {
  *out = 0;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<T>::max())) return false;
    *out = T(v);
    return true;
  }
  if (it->is_number_integer()) {
    const auto v = it->get<int64_t>();
    if (v < int64_t(std::numeric_limits<T>::min()) || (v > 0 && uint64_t(v) > uint64_t(std::numeric_limits<T>::max()))) return false;
    *out = T(v);
    return true;
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    T v{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return false;
    *out = v;
    return true;
  }
  return false;
}

bool BoolField(const nlohmann::json& j, const char* key, bool* out) {
  *out = false;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_boolean()) return false;
  *out = it->get<bool>();
  return true;
}

}  // namespace

Result<VolumeInfo> DecodeVolumeInfo(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("failed to unmarshal volume info: ") + e.what());
  }
  if (!j.is_object()) return Status::Corruption("volume info is not a JSON object");
  VolumeInfo v;
  const bool ok = IntField(j, "version", &v.version) && IntField(j, "bytesOffset", &v.bytes_offset) &&
                  IntField(j, "datFileSize", &v.dat_file_size) && IntField(j, "expireAtSec", &v.expire_at_sec) &&
                  BoolField(j, "readOnly", &v.read_only) && BoolField(j, "readOnlyCanDelete", &v.read_only_can_delete);
  if (!ok) return Status::Corruption("failed to unmarshal volume info: a field has the wrong type or is out of range");
  if (auto r = j.find("replication"); r != j.end() && !r->is_null()) {
    if (!r->is_string()) return Status::Corruption("failed to unmarshal volume info: replication is not a string");
    v.replication = r->get<std::string>();
  }
  if (auto ec = j.find("ecShardConfig"); ec != j.end() && !ec->is_null()) {
    EcShardConfigInfo c;
    if (!ec->is_object() || !IntField(*ec, "dataShards", &c.data_shards) || !IntField(*ec, "parityShards", &c.parity_shards) ||
        !IntField(*ec, "encodeTsNs", &c.encode_ts_ns) || !IntField(*ec, "blockSize", &c.block_size))
      return Status::Corruption("failed to unmarshal volume info: ecShardConfig has a field of the wrong type or out of range");
    v.ec_shard_config = c;
  }
  v.has_remote_files = j.contains("files") && j["files"].is_array() && !j["files"].empty();
  v.original_json = text;
  return v;
}

std::string EncodeVolumeInfo(const VolumeInfo& v) {
  nlohmann::ordered_json j;
  if (!v.original_json.empty()) {
    // Keep fields this version does not model (remote files, EC config).
    try {
      auto old = nlohmann::ordered_json::parse(v.original_json);
      if (old.is_object()) j = old;
    } catch (...) {
    }
  }
  if (!j.contains("files")) j["files"] = nlohmann::ordered_json::array();
  j["version"] = v.version;
  j["replication"] = v.replication;
  j["bytesOffset"] = v.bytes_offset;
  j["datFileSize"] = std::to_string(v.dat_file_size);
  j["expireAtSec"] = std::to_string(v.expire_at_sec);
  j["readOnly"] = v.read_only;
  if (v.ec_shard_config) {
    const EcShardConfigInfo& c = *v.ec_shard_config;
    nlohmann::ordered_json ec;
    ec["dataShards"] = c.data_shards;
    ec["parityShards"] = c.parity_shards;
    ec["encodeTsNs"] = std::to_string(c.encode_ts_ns);
    ec["blockSize"] = std::to_string(c.block_size);
    j["ecShardConfig"] = ec;
  } else if (!j.contains("ecShardConfig")) {
    j["ecShardConfig"] = nullptr;
  }
  j["readOnlyCanDelete"] = v.read_only_can_delete;
  return j.dump(2);
}

Result<VolumeInfo> LoadVolumeInfo(const std::string& path, bool* exists) {
  std::string text;
  *exists = ReadWholeFile(path, &text);
  if (text.empty()) return VolumeInfo{};
  return DecodeVolumeInfo(text);
}

}  // namespace kelp
