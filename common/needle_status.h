// VolumeNeedleStatus's answer from a parsed needle, field for field as Go
// fills it (the CRC in Go's masked CRC.Value() form). Shared by the
// supervisor (regular volumes, EC needles on local shards) and the gRPC
// worker (EC needles read across holders).
#pragma once
#include "common/crc32c.h"
#include "common/needle.h"
#include "proto/volume_server.pb.h"

namespace kelp {

inline void FillNeedleStatus(const ParsedNeedle& n, volume_server_pb::VolumeNeedleStatusResponse* resp) {
  resp->set_needle_id(n.header.id);
  resp->set_cookie(n.header.cookie);
  resp->set_size(n.header.size);
  resp->set_last_modified(n.last_modified);
  resp->set_crc(LegacyCrcValue(n.checksum));
  if (n.flags & kFlagHasTtl) resp->set_ttl(n.ttl.String());
}

}  // namespace kelp
