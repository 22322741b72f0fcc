// The supervisor <-> job worker protocol (kelp-worker-ec). A job worker is
// started for one job and gets fd 3, a SOCK_SEQPACKET socket, framed as every
// other channel (ipc/messages.h). The supervisor sends the job with the
// descriptors it may use: the inputs read-only, and output files it created
// empty that nothing mounted reads. The worker answers any number of
// kJobProgress, then exactly one answer (kCompactDone, kEcGenerateDone or
// kJobFailed), and exits.
// Nothing the worker says is trusted: the supervisor checks the outputs
// before it uses them (storage/compaction.h CheckCompactedCopy), and a worker
// that dies, lies or breaks the protocol fails its job alone.
#pragma once
#include <cstdint>

#include "ipc/messages.h"

namespace kelp::ipc {

// A vacuum's copy (storage/compaction.h CopyLiveNeedlesInto). The volume's
// superblock, as encoded in its .dat, follows the struct.
struct CompactJob {
  char build_id[kBuildIdLength];  // the supervisor's; a worker of another build refuses
  uint32_t volume_id;
  uint8_t offset_bytes;
  uint8_t reserved8[3];
  uint64_t idx_end, dat_end;
  uint64_t content_bytes, deleted_bytes;
  int64_t bytes_per_second;  // 0: unthrottled
  uint64_t now_s;            // "now" for TTL expiry
  uint32_t super_block_length;
  uint32_t reserved32;
};

struct JobProgress {
  uint64_t processed;  // the source offset reached
};

struct CompactDone {
  uint64_t copied, dropped, dropped_bytes, expired, cpd_size;
};

// Erasure coding of a volume (storage/ec_encode.h): the .ecx, then
// data_shards + parity_shards shard files in the uniform layout. The shard
// descriptors follow in kJobFiles messages, four at a time, in shard order.
struct EcGenerateJob {
  char build_id[kBuildIdLength];
  uint32_t volume_id;
  uint8_t offset_bytes;
  uint8_t data_shards, parity_shards;
  uint8_t reserved8;
  uint64_t idx_end, dat_end;  // the snapshot: rows and bytes below these
  uint64_t block_size;        // bytes per shard
  int64_t bytes_per_second;   // 0: unthrottled
};

struct JobFiles {
  uint32_t first;  // index of the first descriptor in the job's list of outputs
  uint32_t count;
};

// One run of checksums of one shard, in order; a shard's whole list may take
// several messages.
struct EcChecksums {
  uint32_t shard;
  uint32_t count;
};

struct EcGenerateDone {
  uint64_t ecx_rows;
};

// Regenerating shards: the present ones (bits of present_mask, ascending)
// are read, the missing ones (bits of missing_mask, ascending) written, all
// shard_size bytes. The descriptors come in kJobFiles messages, present then
// missing. With a checksum_block, every present shard is read and the
// checksums of every present and missing shard (kEcChecksums, by shard id)
// come before kEcJobDone.
struct EcRebuildJob {
  char build_id[kBuildIdLength];
  uint32_t volume_id;
  uint8_t data_shards, parity_shards;
  uint8_t reserved8[2];
  uint32_t present_mask, missing_mask;
  uint64_t shard_size;
  int64_t bytes_per_second;
  uint64_t checksum_block;  // 0: none
};

// Decoding a .dat of dat_size bytes from the data shards 0..data_shards-1
// (descriptors in kJobFiles, then the .dat's), laid out with these blocks.
struct EcDecodeJob {
  char build_id[kBuildIdLength];
  uint32_t volume_id;
  uint8_t data_shards;
  uint8_t reserved8[3];
  uint64_t large_block, small_block, shard_dat_size, dat_size;
  int64_t bytes_per_second;
};

struct EcJobDone {
  uint64_t bytes;  // bytes written per output
};

}  // namespace kelp::ipc
