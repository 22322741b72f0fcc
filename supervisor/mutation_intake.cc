#include "supervisor/mutation_intake.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdio>

#include "common/file_util.h"
#include "ipc/wire_code.h"

namespace kelp {
namespace {

constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

Intake Breach(std::string why) {
  Intake in;
  in.breach = std::move(why);
  return in;
}

Intake DecodeWrite(ipc::Message& m) {
  ipc::WriteRequest req;
  if (!m.AsPrefix(&req) || req.record_length == 0 || req.fsync > 1 || req.inline_record > 1)
    return Breach("sent a malformed write request");
  Intake in;
  in.volume_id = req.volume_id;
  in.reply_type = ipc::MsgType::kWriteReply;
  auto job = std::make_shared<PendingMutation>();
  job->m.fsync = req.fsync != 0;
  if (req.inline_record) {
    if (!m.fds.empty() || req.record_length > ipc::kInlineRecordLimit || m.payload.size() - sizeof req != req.record_length)
      return Breach("sent a write request whose length does not match");
    job->inline_record = std::move(m.payload);
    job->m.record = reinterpret_cast<uint8_t*>(job->inline_record.data()) + sizeof req;
  } else {
    // The record must be a memfd the worker can no longer change: sealed
    // against writes, growth and shrinking (a shrink would SIGBUS the writer),
    // of exactly the announced length.
    struct stat st;
    if (m.fds.size() != 1 || m.payload.size() != sizeof req || fstat(m.fds[0], &st) != 0 || !S_ISREG(st.st_mode) ||
        uint64_t(st.st_size) != req.record_length)
      return Breach("sent a write request without a matching record buffer");
    const int seals = fcntl(m.fds[0], F_GET_SEALS);
    if (seals < 0 || (seals & kRequiredSeals) != kRequiredSeals) return Breach("sent a record buffer that is not sealed");
    // Private: the writer patches append_at_ns in its own copy of that page.
    void* p = mmap(nullptr, req.record_length, PROT_READ | PROT_WRITE, MAP_PRIVATE, m.fds[0], 0);
    if (p == MAP_FAILED) {
      in.refusal = Status::IOError(ErrnoMessage("mmap write buffer"));
      return in;
    }
    job->mapping = p;
    job->mapping_length = req.record_length;
    job->m.record = static_cast<uint8_t*>(p);
  }
  job->m.length = req.record_length;
  // A correct worker only ever sends records it encoded itself.
  if (Status s = ValidateRecord(job->m.record, job->m.length); !s.ok())
    return Breach("sent an invalid needle record (" + s.message() + ")");
  in.job = std::move(job);
  return in;
}

Intake DecodeDelete(ipc::Message& m) {
  ipc::DeleteRequest req;
  if (!m.As(&req) || !m.fds.empty()) return Breach("sent a malformed delete request");
  Intake in;
  in.volume_id = req.volume_id;
  in.reply_type = ipc::MsgType::kDeleteReply;
  in.job = std::make_shared<PendingMutation>();
  in.job->m.kind = Mutation::Kind::kDelete;
  in.job->m.id = req.needle_id;
  in.job->m.cookie = req.cookie;
  in.job->m.append_at_ns_hint = req.append_at_ns;
  return in;
}

}  // namespace

PendingMutation::~PendingMutation() {
  if (mapping) munmap(mapping, mapping_length);
}

Intake DecodeMutation(ipc::Message& m) {
  switch (m.type()) {
    case ipc::MsgType::kWriteRequest:
      return DecodeWrite(m);
    case ipc::MsgType::kDeleteRequest:
      return DecodeDelete(m);
    default:
      return Breach("sent a message of unexpected type " + std::to_string(m.header.type));
  }
}

ipc::MutationReply MutationReplyOf(const Status& s, uint32_t size, uint64_t offset) {
  ipc::MutationReply r{};
  r.code = uint16_t(ipc::ToWire(s.code()));
  r.size = size;
  r.offset = offset;
  std::snprintf(r.message, sizeof r.message, "%s", s.message().c_str());
  return r;
}

}  // namespace kelp
