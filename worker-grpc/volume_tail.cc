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
#include "worker-grpc/volume_files.h"
#include "common/bytes.h"
#include "common/needle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/peer_guard.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr size_t kBodySlice = 2 << 20;  // Go's BufferSizeLimit
constexpr auto kCycle = std::chrono::seconds(2);

grpc::Status Unknown(const std::string& m) { return grpc::Status(grpc::StatusCode::UNKNOWN, m); }

// Sleeps one cycle; false when the caller went away meanwhile.
bool WaitCycle(grpc::ServerContext* ctx) {
  const auto until = std::chrono::steady_clock::now() + kCycle;
  while (std::chrono::steady_clock::now() < until) {
    if (ctx->IsCancelled()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !ctx->IsCancelled();
}

// A tailed needle as the canonical version-3 record kelp appends: the fields
// Go parses from the stream (CRC checked), re-encoded as Go's write path
// would, with the data checksum in its current form. "" and `*error` set
// when Go's parse would fail.
std::string CanonicalRecord(const std::string& header, const std::string& body, uint8_t version, std::string* error) {
  std::string record = header + body;
  const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(header.data()));
  if (version != 2 && version != 3) {
    *error = "unsupported version " + std::to_string(version) + "!";
    return "";
  }
  const uint64_t need = uint64_t(h.size) + kNeedleChecksumSize + (version == 3 ? kTimestampSize : 0);
  if (body.size() < need) {
    *error = "needle " + std::to_string(h.id) + " body of " + std::to_string(body.size()) + " bytes is shorter than its size " +
             std::to_string(h.size);
    return "";
  }
  // ParseNeedle wants the whole record; a short tail (Go tolerates a
  // missing padding) is padded out first.
  record.resize(size_t(ActualSize(h.size, version)), '\0');
  ParsedNeedle n;
  if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), h.size, version, &n); !s.ok()) {
    *error = s.message();
    return "";
  }
  std::string out(size_t(ActualSize(h.size, 3)), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p, record.data(), kNeedleHeaderSize + h.size);
  PutU32(p + kNeedleHeaderSize + h.size, n.checksum);
  // append_at_ns stays 0: the supervisor stamps its own.
  uint8_t* pad = p + kNeedleHeaderSize + h.size + kNeedleChecksumSize + kTimestampSize;
  uint8_t canonical[8] = {0};
  PutU32(canonical, h.size);
  std::memcpy(pad, canonical, PaddingLength(h.size, 3));
  return out;
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
    if (!found.ok()) return Unknown("streamFollow: fail to locate by appendAtNs " + std::to_string(last) + ": " + found.status().message());
    uint64_t reached = last;
    if (found.value().nothing_newer) {
      // A heartbeat keeps the receiver's connection alive.
      volume_server_pb::VolumeTailSenderResponse beat;
      beat.set_is_last_chunk(true);
      beat.set_version(version);
      if (!writer->Write(beat)) return Unknown("streamFollow: the receiver went away");
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
      if (!scan.ok()) return Unknown("streamFollow: " + scan.message());
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
    if (!supervisor_->Call("VolumeStatus", probe, &ignored).ok()) return Unknown("receiver not found volume id " + std::to_string(vid));
  }
  const std::string& source = req->source_volume_server();
  if (!config_->allow_untrusted_remote_endpoints)
    if (const std::string why = BlockedPeerAddress(source); !why.empty()) return Unknown("invalid source volume server " + source + ": " + why);

  auto stub = volume_server_pb::VolumeServer::NewStub(grpc::CreateChannel(MasterGrpcAddress(source), grpc::InsecureChannelCredentials()));
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
    if (header.size() != size_t(kNeedleHeaderSize)) return fail(Unknown("needle header of " + std::to_string(header.size()) + " bytes"));
    // A needle's slices repeat its header and add up to its body, no more:
    // what a peer sends cannot grow this process beyond one needle.
    const uint64_t body_length = BodyLength(ParseNeedleHeader(reinterpret_cast<const uint8_t*>(header.data())).size, version);
    std::string body = msg.needle_body();
    while (!msg.is_last_chunk()) {
      if (body.size() > body_length) break;
      if (!reader->Read(&msg)) {
        // Go parses a needle cut short by the end of the stream; kelp
        // applies nothing it did not receive whole.
        if (grpc::Status s = reader->Finish(); !s.ok()) return s;
        return Unknown("the source's stream ended inside needle " +
                       std::to_string(ParseNeedleHeader(reinterpret_cast<const uint8_t*>(header.data())).id));
      }
      if (msg.needle_header() != header) return fail(Unknown("a needle's slices name different needles"));
      body += msg.needle_body();
    }
    if (body.size() > body_length)
      return fail(Unknown("needle body of " + std::to_string(body.size()) + " bytes, more than its size allows"));
    std::string error;
    const std::string record = CanonicalRecord(header, body, version, &error);
    if (record.empty()) return fail(Unknown(error));
    kelp_internal::TailedNeedle append;
    append.set_volume_id(vid);
    append.set_record(record);
    // A deletion's record: no data, and the checksum of the needle it deleted
    // (an empty upload's checksum is 0).
    const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record.data()));
    append.set_tombstone(h.size == 0 && GetU32(reinterpret_cast<const uint8_t*>(record.data()) + kNeedleHeaderSize) != 0);
    kelp_internal::TailedNeedleWritten written;
    if (grpc::Status s = supervisor_->Call("kelp.AppendTailed", append, &written); !s.ok()) return fail(s);
  }
  // The source's own answer, code and text, is the call's (as in Go).
  return reader->Finish();
}

}  // namespace kelp
