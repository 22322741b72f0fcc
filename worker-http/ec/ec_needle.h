// What the read path needs from an erasure-coded read, without its cluster
// machinery (worker-http/ec/ec_reader.h does the reading): the outcome, and
// the record, whole or without its data with a source that streams the data.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/types.h"
#include "worker-http/http_types.h"

namespace kelp {

class StreamedBlobData;

struct EcNeedleRead {
  enum class Outcome { kNoVolume, kNotFound, kDeleted, kError, kOk };
  Outcome outcome = Outcome::kError;
  std::string error;   // Go's text
  // kOk: the whole record, handed on to the response; or, when `data` is set,
  // the record without its data (StoredBlob's streamed form).
  http::ByteBuffer record;
  std::shared_ptr<StreamedBlobData> data;
  uint64_t data_size = 0;  // with `data`
  uint32_t size = 0;   // the needle's size field
  uint8_t version = 3;
  std::string collection;
  int primary_shard = -1;  // the shard holding the record's first byte
};

// Reads needle `id` of EC volume `vid`; `master` is the master's HTTP
// address; `done` runs on the worker's loop.
using EcReadFn = std::function<void(const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done)>;

// A delete of an EC needle: journaled by a holder of the shard the record
// starts in (Go's doDeleteNeedleFromRemoteEcShardServers).
struct EcNeedleDelete {
  bool no_volume = false;  // no EC volume of the id here: the caller goes on as for any volume
  bool deleted = false;    // deleted already (Go 4.48 answers 404, size 0)
  std::string error;       // Go's text; "" when deleted
  uint64_t size = 0;       // what Go reports (GoEcDeletedSize)
};
using EcDeleteFn =
    std::function<void(const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done)>;

}  // namespace kelp
