// The JSON manifest of a file uploaded in chunks (`cm=true`): the chunks' file
// ids and where each sits in the whole. Parsed as Go's encoding/json reads it
// into operation.ChunkManifest: keys match case-insensitively, unknown keys
// are ignored, null leaves a field empty, a value of the wrong type is an error.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kelp {

struct ChunkInfo {
  std::string fid;
  int64_t offset = 0;
  int64_t size = 0;
};

struct ChunkManifest {
  std::string name;
  std::string mime;
  int64_t size = 0;               // as recorded; the served length is TotalSize()
  std::vector<ChunkInfo> chunks;  // sorted by offset

  // The length a read of the manifest serves: the sum of the chunk sizes.
  int64_t TotalSize() const;
};

Result<ChunkManifest> ParseChunkManifest(std::string_view json);

// The part of one chunk a read of [start, start+length) of the whole needs.
struct ChunkPiece {
  size_t chunk = 0;   // index into ChunkManifest::chunks
  int64_t from = 0;   // offset inside the chunk
  int64_t length = 0;
};

// Chunks are laid end to end in offset order (Go reads them one after the
// other from the chunk holding `start`); a range outside them yields nothing.
std::vector<ChunkPiece> PiecesFor(const std::vector<ChunkInfo>& chunks, int64_t start, int64_t length);

}  // namespace kelp
