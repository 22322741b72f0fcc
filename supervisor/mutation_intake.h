// Turns a worker's WriteRequest or DeleteRequest datagram into a Mutation the
// disk writer may apply, or says how the worker broke the protocol. Used on
// the event loop (main channel) and on writer threads (write lanes) alike, so
// it touches no shared state.
#pragma once
#include <sys/types.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "ipc/channel.h"
#include "storage/volume.h"

namespace kelp {

// A mutation in flight between a worker's request and the writer's answer.
struct PendingMutation {
  Mutation m;
  std::string inline_record;  // the datagram's payload, moved here (no copy)
  void* mapping = nullptr;    // or a private mapping of the worker's sealed memfd
  size_t mapping_length = 0;
  // The writer thread answered the worker itself. Set there before the
  // mutation's loop completion is queued, read on the loop after (the
  // writer's queue lock orders the two).
  bool answered = false;
  ~PendingMutation();
};

struct Intake {
  std::shared_ptr<PendingMutation> job;  // set when the request is sound
  VolumeId volume_id = 0;
  ipc::MsgType reply_type = ipc::MsgType::kWriteReply;
  // Non-empty: the worker broke the protocol, and must be dropped.
  std::string breach;
  // Not ok: a sound request this server cannot take (answer it with this).
  Status refusal;
};

// For kWriteRequest and kDeleteRequest messages. Takes the payload of `m`
// (an inline record is kept without a copy); fds stay with `m`.
Intake DecodeMutation(ipc::Message& m);

// The answer a worker gets for a finished mutation.
ipc::MutationReply MutationReplyOf(const Status& s, uint32_t size, uint64_t offset);

}  // namespace kelp
