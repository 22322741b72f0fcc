#include "worker-http/chunk_manifest.h"

#include <strings.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kelp {
namespace {

using Json = nlohmann::json;

// Go's encoding/json: an exact key match wins, otherwise a case-insensitive one.
const Json* Field(const Json& obj, std::string_view key) {
  if (auto it = obj.find(std::string(key)); it != obj.end()) return &*it;
  const Json* found = nullptr;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (it.key().size() == key.size() && strncasecmp(it.key().data(), key.data(), key.size()) == 0) found = &it.value();
  return found;
}

Status ReadString(const Json& obj, std::string_view key, std::string* out) {
  const Json* v = Field(obj, key);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_string()) return Status::Invalid("json: cannot unmarshal " + std::string(v->type_name()) + " into field " + std::string(key) + " of type string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status ReadInt(const Json& obj, std::string_view key, int64_t* out) {
  const Json* v = Field(obj, key);
  if (!v || v->is_null()) return Status::Ok();
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > uint64_t(INT64_MAX)) return Status::Invalid("json: number out of range for field " + std::string(key));
    *out = int64_t(v->get<uint64_t>());
    return Status::Ok();
  }
  if (!v->is_number_integer()) return Status::Invalid("json: cannot unmarshal " + std::string(v->type_name()) + " into field " + std::string(key) + " of type int64");
  *out = v->get<int64_t>();
  return Status::Ok();
}

}  // namespace

int64_t ChunkManifest::TotalSize() const {
  int64_t total = 0;
  for (const ChunkInfo& c : chunks) total += c.size;
  return total;
}

Result<ChunkManifest> ParseChunkManifest(std::string_view text) {
  const Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return Status::Invalid("invalid chunk manifest: not JSON");
  ChunkManifest m;
  if (j.is_null()) return m;
  if (!j.is_object()) return Status::Invalid("json: cannot unmarshal " + std::string(j.type_name()) + " into a chunk manifest");
  if (Status s = ReadString(j, "name", &m.name); !s.ok()) return s;
  if (Status s = ReadString(j, "mime", &m.mime); !s.ok()) return s;
  if (Status s = ReadInt(j, "size", &m.size); !s.ok()) return s;
  if (const Json* chunks = Field(j, "chunks"); chunks && !chunks->is_null()) {
    if (!chunks->is_array()) return Status::Invalid("json: cannot unmarshal " + std::string(chunks->type_name()) + " into field chunks");
    for (const Json& c : *chunks) {
      if (!c.is_object()) return Status::Invalid("json: a chunk must be an object");
      ChunkInfo info;
      if (Status s = ReadString(c, "fid", &info.fid); !s.ok()) return s;
      if (Status s = ReadInt(c, "offset", &info.offset); !s.ok()) return s;
      if (Status s = ReadInt(c, "size", &info.size); !s.ok()) return s;
      if (info.size < 0 || info.offset < 0) return Status::Invalid("chunk " + info.fid + " has a negative offset or size");
      m.chunks.push_back(std::move(info));
    }
  }
  std::stable_sort(m.chunks.begin(), m.chunks.end(), [](const ChunkInfo& a, const ChunkInfo& b) { return a.offset < b.offset; });
  int64_t total = 0;
  for (const ChunkInfo& c : m.chunks) {
    if (c.size > INT64_MAX - total) return Status::Invalid("chunk sizes overflow");
    total += c.size;
  }
  return m;
}

std::vector<ChunkPiece> PiecesFor(const std::vector<ChunkInfo>& chunks, int64_t start, int64_t length) {
  std::vector<ChunkPiece> out;
  int64_t at = 0;  // where the current chunk begins in the served stream
  for (size_t i = 0; i < chunks.size() && length > 0; ++i) {
    const int64_t size = chunks[i].size;
    if (start < at + size) {
      const int64_t from = std::max<int64_t>(start - at, 0);
      const int64_t n = std::min(size - from, length);
      if (n > 0) out.push_back(ChunkPiece{i, from, n});
      length -= n;
      start += n;
    }
    at += size;
  }
  return out;
}

}  // namespace kelp
