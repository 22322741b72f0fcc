// Tails. The sender streams a volume's records appended after a time, every
// 2 s until the volume has been idle for idle_timeout_seconds cycles; it
// reads the files through read-only descriptors the supervisor opens, never
// past sizes taken between two writes. The receiver follows a peer's sender
// into a local volume: each needle is checked, re-encoded as a canonical
// record and handed to the supervisor, which appends it as a write, or
// applies it as a delete when it is a deletion's record.
// (upstream: weed/server/volume_grpc_tail.go, weed/operation/tail_volume.go;
// docs/copy-and-tail.md §7, §8)
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/appended_since.h"
#include "common/bytes.h"
#include "common/go_error.h"
#include "common/needle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr size_t kBodySlice = 2 << 20;  // Go's BufferSizeLimit
constexpr auto kCycle = std::chrono::seconds(2);

// Sleeps one cycle; false when the caller went away meanwhile.
bool WaitCycle(grpc::ServerContext* ctx) {
  const auto until = std::chrono::steady_clock::now() + kCycle;
  while (std::chrono::steady_clock::now() < until) {
    if (ctx->IsCancelled()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !ctx->IsCancelled();
}

// Makes a tailed needle (`record`: its header, then the body slices as they
// came) the canonical version-3 record kelp appends, in place: the fields Go
// parses from the stream (CRC checked), with the data checksum in its current
// form. Go's parse error otherwise.
Status CanonicalizeRecord(std::string* record, uint8_t version) {
  const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record->data()));
  if (version != 2 && version != 3) return Status::Invalid("unsupported version " + std::to_string(version) + "!");
  const size_t body = record->size() - kNeedleHeaderSize;
  if (body < uint64_t(h.size) + kNeedleChecksumSize + (version == 3 ? kTimestampSize : 0))
    return Status::Invalid("needle " + std::to_string(h.id) + " body of " + std::to_string(body) + " bytes is shorter than its size " +
                           std::to_string(h.size));
  // ParseNeedle wants the whole record; a short tail (Go tolerates a
  // missing padding) is padded out first.
  record->resize(size_t(ActualSize(h.size, version)), '\0');
  ParsedNeedle n;
  if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record->data()), record->size(), h.size, version, &n); !s.ok()) return s;
  RecordToV3(record, n.checksum);
  return Status::Ok();
}

}  // namespace

grpc::Status VolumeService::VolumeTailSender(grpc::ServerContext* ctx, const volume_server_pb::VolumeTailSenderRequest* req,
                                             grpc::ServerWriter<volume_server_pb::VolumeTailSenderResponse>* writer) {
  const uint32_t vid = req->volume_id();
  uint64_t last = req->since_ns();
  uint32_t idle_left = req->idle_timeout_seconds();
  for (;;) {
    VolumeFiles files;
    if (grpc::Status s = OpenVolumeFiles(supervisor_, vid, &files); !s.ok()) return s;
    const uint32_t version = files.view.version;
    auto found = FindFirstAppendedAfter(files.view, last);
    if (!found.ok()) return GoError("streamFollow: fail to locate by appendAtNs " + std::to_string(last) + ": " + found.status().message());
    uint64_t reached = last;
    if (found.value().nothing_newer) {
      // A heartbeat keeps the receiver's connection alive.
      volume_server_pb::VolumeTailSenderResponse beat;
      beat.set_is_last_chunk(true);
      beat.set_version(version);
      if (!writer->Write(beat)) return GoError("streamFollow: the receiver went away");
    } else {
      Status scan = ScanRecordsFrom(
          files.view, found.value().offset, kBodySlice,
          [&](const RecordSlice& r) -> Status {
            volume_server_pb::VolumeTailSenderResponse msg;
            msg.set_needle_header(r.header.data(), r.header.size());
            msg.set_needle_body(r.body.data(), r.body.size());
            msg.set_is_last_chunk(r.last);
            msg.set_version(version);
            if (!writer->Write(msg)) return Status::IOError("visit needle error: the receiver went away");
            return Status::Ok();
          },
          &reached);
      if (!scan.ok()) return GoError("streamFollow: " + scan.message());
    }
    if (!WaitCycle(ctx)) return grpc::Status(grpc::StatusCode::CANCELLED, "the receiver went away");
    if (req->idle_timeout_seconds() == 0) {
      last = reached;
      continue;
    }
    if (reached == last) {
      if (--idle_left == 0) return grpc::Status::OK;
    } else {
      last = reached;
      idle_left = req->idle_timeout_seconds();
    }
  }
}

grpc::Status VolumeService::VolumeTailReceiver(grpc::ServerContext* ctx, const volume_server_pb::VolumeTailReceiverRequest* req,
                                               volume_server_pb::VolumeTailReceiverResponse*) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeTailReceiver"); !denied.ok()) return denied;
  const uint32_t vid = req->volume_id();
  {
    volume_server_pb::VolumeStatusRequest probe;
    probe.set_volume_id(vid);
    volume_server_pb::VolumeStatusResponse ignored;
    if (!supervisor_->Call("VolumeStatus", probe, &ignored).ok()) return GoError("receiver not found volume id " + std::to_string(vid));
  }
  std::unique_ptr<volume_server_pb::VolumeServer::Stub> stub;
  if (grpc::Status s = DialSource(req->source_volume_server(), "volume server", &stub); !s.ok()) return s;
  volume_server_pb::VolumeTailSenderRequest tail;
  tail.set_volume_id(vid);
  tail.set_since_ns(req->since_ns());
  tail.set_idle_timeout_seconds(req->idle_timeout_seconds());
  grpc::ClientContext c;
  auto reader = stub->VolumeTailSender(&c, tail);
  volume_server_pb::VolumeTailSenderResponse msg;
  auto fail = [&](grpc::Status s) {
    c.TryCancel();
    while (reader->Read(&msg)) {
    }
    reader->Finish();
    return s;
  };
  while (reader->Read(&msg)) {
    if (ctx->IsCancelled()) return fail(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"));
    if (msg.needle_header().empty()) continue;  // a heartbeat
    const uint8_t version = msg.version() == 0 ? 3 : uint8_t(msg.version());
    const std::string header = msg.needle_header();
    if (header.size() != size_t(kNeedleHeaderSize)) return fail(GoError("needle header of " + std::to_string(header.size()) + " bytes"));
    // A needle's slices repeat its header and add up to its body, no more:
    // what a peer sends cannot grow this process beyond one needle.
    const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(header.data()));
    const uint64_t body_length = BodyLength(h.size, version);
    std::string record = header;  // the body's slices follow in place
    record += msg.needle_body();
    while (!msg.is_last_chunk() && record.size() - kNeedleHeaderSize <= body_length) {
      if (!reader->Read(&msg)) {
        // Go parses a needle cut short by the end of the stream; kelp
        // applies nothing it did not receive whole.
        if (grpc::Status s = reader->Finish(); !s.ok()) return s;
        return GoError("the source's stream ended inside needle " + std::to_string(h.id));
      }
      if (msg.needle_header() != header) return fail(GoError("a needle's slices name different needles"));
      record += msg.needle_body();
    }
    if (record.size() - kNeedleHeaderSize > body_length)
      return fail(GoError("needle body of " + std::to_string(record.size() - kNeedleHeaderSize) + " bytes, more than its size allows"));
    if (Status s = CanonicalizeRecord(&record, version); !s.ok()) return fail(GoError(s.message()));
    kelp_internal::TailedNeedle append;
    append.set_volume_id(vid);
    // A deletion's record: no data, and the checksum of the needle it deleted
    // (an empty upload's checksum is 0).
    append.set_tombstone(h.size == 0 && GetU32(reinterpret_cast<const uint8_t*>(record.data()) + kNeedleHeaderSize) != 0);
    append.set_record(std::move(record));
    kelp_internal::TailedNeedleWritten written;
    if (grpc::Status s = supervisor_->Call("kelp.AppendTailed", append, &written); !s.ok()) return fail(s);
  }
  // The source's own answer, code and text, is the call's (as in Go).
  return reader->Finish();
}

}  // namespace kelp
