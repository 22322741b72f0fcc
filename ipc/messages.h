// The supervisor <-> worker protocol: one SOCK_SEQPACKET socketpair per worker,
// one datagram per message, file descriptors as SCM_RIGHTS. An HTTP worker
// also gets one write lane per disk location: a second socketpair whose other
// end the location's disk writer thread reads itself. Writes and deletes go
// down the lane of their volume's location (VolumeAttach.lane) and are
// answered there (or, when the lane cannot take the answer, on the main
// channel); everything else uses the main channel.
// Every datagram is a MsgHeader followed by `length` payload bytes. Payload
// structs are trivially copyable and sent in host byte order: both ends are
// the same build on the same host (the supervisor execs its workers from the
// executables it opened at start, and Hello carries its build id, which a
// worker of any other build refuses). The header's version is checked on every
// datagram; each message decodes at its exact length.
#pragma once
#include <cstdint>
#include <type_traits>

namespace kelp::ipc {

inline constexpr uint32_t kMagic = 0x4b4c5021;  // "KLP!"
inline constexpr uint16_t kProtocolVersion = 4;
inline constexpr size_t kBuildIdLength = 72;  // 64 hex digits, NUL-padded
// Records up to this size travel inside the datagram; larger ones in a memfd.
inline constexpr uint32_t kInlineRecordLimit = 64 * 1024;
inline constexpr uint32_t kMaxDatagram = kInlineRecordLimit + 4096;
inline constexpr int kMaxFdsPerMessage = 4;

enum class MsgType : uint16_t {
  kHello = 1,            // S->W  payload: Hello + argv (NUL-separated); fds: [listen socket...]
  kVolumeAttach = 2,     // S->W  payload: VolumeAttach + collection; fds: [.dat read-only, index segment]
  kVolumeDetach = 3,     // S->W  payload: VolumeRef
  kSegmentReplaced = 4,  // S->W  payload: VolumeRef; fds: [new index segment]
  kSegmentAck = 5,       // W->S  payload: VolumeRef (the generation the worker now reads)
  kWriteRequest = 6,     // W->S  payload: WriteRequest [+ record bytes when inline]; fds: [] or [record memfd]
  kWriteReply = 7,       // S->W  payload: MutationReply
  kDeleteRequest = 8,    // W->S  payload: DeleteRequest
  kDeleteReply = 9,      // S->W  payload: MutationReply
  kDrain = 10,           // S->W  no payload: stop accepting, finish in-flight requests, exit
  kReady = 11,           // W->S  no payload: listening, all volumes attached
  kAttachDone = 12,      // S->W  no payload: the initial volume set is complete
  kAdminRequest = 13,    // W->S  payload: AdminRequest + method name + bulk body (see bulk.h)
  kAdminReply = 14,      // S->W  payload: AdminReply + error message + bulk body
  kServerState = 15,     // S->W  payload: ServerState + current master address
  kWriteLane = 16,       // S->W  payload: WriteLane; fds: [the lane's socket]
  kAdminProgress = 17,   // S->W  payload: AdminReply (code 0, no message) + bulk body: one streamed
                         //       response of a call still running; its kAdminReply ends it
  kAdminFd = 18,         // S->W  no payload; fds: [a descriptor the call's kAdminReply, which follows, hands over]
  // A job worker's channel (ipc/job_messages.h): one job, then the process exits.
  kCompactJob = 19,   // S->J  payload: CompactJob + superblock bytes; fds: [.idx, .dat read-only; .cpd, .cpx to write]
  kJobProgress = 20,  // J->S  payload: JobProgress
  kCompactDone = 21,  // J->S  payload: CompactDone (the job's last message)
  kJobFailed = 22,    // J->S  payload: the error text (the job's last message)
  kEcGenerateJob = 23,   // S->J  payload: EcGenerateJob; fds: [.idx, .dat read-only; .ecx to write]
  kJobFiles = 24,        // S->J  payload: JobFiles; fds: [up to four more outputs, in order]
  kEcChecksums = 25,     // J->S  payload: EcChecksums + that many little-endian CRC-32C values
  kEcGenerateDone = 26,  // J->S  payload: EcGenerateDone (the job's last message)
  kEcRebuildJob = 27,    // S->J  payload: EcRebuildJob; then kJobFiles: [present shards read-only, then missing ones to write]
  kEcDecodeJob = 28,     // S->J  payload: EcDecodeJob; then kJobFiles: [data shards read-only, then the .dat to write]
  kEcJobDone = 29,       // J->S  payload: EcJobDone (the last message of a rebuild or decode)
};

struct MsgHeader {
  uint32_t magic;
  uint16_t version;  // kProtocolVersion
  uint16_t type;
  uint32_t length;
  uint32_t reserved2;
  uint64_t request_id;
};
static_assert(sizeof(MsgHeader) == 24);

// HTTP workers get their listening sockets (the main port, then -port.public
// and -metricsPort when those are separate listeners) and, last, the shared
// gauges memfd; `gauge_slot` is the worker's own slot in it.
struct Hello {
  uint32_t worker_index;
  uint32_t listen_fd_count;  // all fds attached, the gauges memfd included
  uint32_t argc;
  uint32_t gauge_slot;
  char build_id[kBuildIdLength];  // the supervisor's build (ipc/build_id.h)
};

struct VolumeRef {
  uint32_t volume_id;
  uint32_t reserved;
  uint64_t generation;
};

struct VolumeAttach {
  uint32_t volume_id;
  uint8_t version;
  uint8_t replica_placement;
  uint8_t ttl_count;
  uint8_t ttl_unit;
  uint64_t generation;
  uint32_t collection_length;  // collection bytes follow the struct
  uint32_t lane;               // the write lane of the volume's location (its index)
  uint16_t compaction_revision;  // the superblock's, for /status
  uint16_t reserved16;
  uint32_t reserved32;
};

// Sent after Hello and before the first VolumeAttach, once per disk location.
struct WriteLane {
  uint32_t lane;  // the location's index
  uint32_t reserved;
};

// A record that does not travel inline comes as a memfd of exactly
// record_length bytes, sealed against writing, growing and shrinking.
struct WriteRequest {
  uint32_t volume_id;
  uint8_t fsync;
  uint8_t inline_record;  // 1: record follows; 0: record is the sealed memfd
  uint16_t reserved;
  uint64_t record_length;
};

struct DeleteRequest {
  uint32_t volume_id;
  uint32_t cookie;
  uint64_t needle_id;
  uint64_t append_at_ns;  // 0: now
};

// Status codes on the wire: fixed numbers, independent of kelp::Code's order.
enum class WireCode : uint16_t {
  kOk = 0,
  kNotFound = 1,
  kCorruption = 2,
  kInvalidArgument = 3,
  kIOError = 4,
  kReadOnly = 5,
  kFull = 6,
  kCookieMismatch = 7,
  kTooLarge = 8,
  kUnavailable = 9,
  kAlreadyExists = 10,
};

struct MutationReply {
  uint16_t code;  // WireCode
  uint16_t reserved;
  uint32_t size;
  uint64_t offset;
  char message[240];  // NUL-terminated
};

// A gRPC call the gRPC worker decoded and validated; the body is the request
// message re-serialized, so the supervisor only ever parses canonical bytes.
struct AdminRequest {
  uint32_t method_length;  // the method name ("AllocateVolume") follows the struct
  uint32_t reserved;
};

// grpc_code is a grpc::StatusCode; 0 means the body is the response message.
struct AdminReply {
  int32_t grpc_code;
  uint32_t message_length;  // the error text follows the struct
};

// Broadcast to every worker whenever it changes.
struct ServerState {
  uint8_t registered;   // the heartbeat stream to a master is up
  uint8_t maintenance;  // mutations are refused
  uint16_t reserved;
  uint32_t state_version;
  uint64_t volume_size_limit;  // 0 until a master sent one
  uint32_t master_length;      // the current master's address follows the struct
  uint32_t reserved2;
};

static_assert(std::is_trivially_copyable_v<Hello> && std::is_trivially_copyable_v<VolumeAttach> &&
              std::is_trivially_copyable_v<WriteRequest> && std::is_trivially_copyable_v<MutationReply>);

}  // namespace kelp::ipc
