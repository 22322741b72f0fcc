// libFuzzer: chunk manifests (JSON from any client that uploads with cm=true)
// and the pieces a read of a range of them asks for. Invariants: the pieces
// of any span lie inside their chunks and add up to the part of the span the
// chunks cover.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "worker-http/chunk_manifest.h"

using namespace kelp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int64_t start = data[0] * 997, length = data[1] * 1009;
  auto m = ParseChunkManifest(std::string_view(reinterpret_cast<const char*>(data) + 2, size - 2));
  if (!m.ok()) return 0;
  const int64_t total = m.value().TotalSize();
  int64_t covered = 0;
  for (const ChunkPiece& p : PiecesFor(m.value().chunks, start, length)) {
    const ChunkInfo& c = m.value().chunks.at(p.chunk);
    if (p.from < 0 || p.length <= 0 || p.from + p.length > c.size) abort();
    covered += p.length;
  }
  const int64_t expected = start >= total ? 0 : std::min(length, total - start);
  if (covered != expected) abort();
  return 0;
}
