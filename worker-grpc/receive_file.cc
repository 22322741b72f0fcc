// ReceiveFile, the gRPC worker's part: the first message says which file;
// the supervisor creates it and hands over a write-only descriptor, and the
// chunks that follow are written here in order. Refusals answer OK with the
// reason in `error`, as Go does; only maintenance mode and a broken stream
// are gRPC errors, and a file the stream did not finish is removed.
// (upstream: weed/server/volume_grpc_copy.go; docs/copy-and-tail.md §4)
#include <unistd.h>

#include <cstring>

#include "common/file_util.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {

grpc::Status VolumeService::ReceiveFile(grpc::ServerContext* ctx, grpc::ServerReader<volume_server_pb::ReceiveFileRequest>* reader,
                                        volume_server_pb::ReceiveFileResponse* resp) {
  volume_server_pb::ReceiveFileRequest msg;
  const bool got_first = reader->Read(&msg);
  if (!got_first && ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::UNKNOWN, "failed to receive stream: context canceled");
  kelp_internal::ReceiveFileOpen open_req;
  // The maintenance gate comes first, whatever the stream holds.
  if (got_first && msg.data_case() == volume_server_pb::ReceiveFileRequest::kInfo) {
    *open_req.mutable_info() = msg.info();
  }
  kelp_internal::ReceiveFileOpened opened;
  OwnedFd file;
  if (grpc::Status s = supervisor_->CallForFd("kelp.OpenReceivedFile", open_req, &opened, &file.fd); !s.ok()) return s;
  if (!got_first) return grpc::Status::OK;  // an empty stream: nothing written
  switch (msg.data_case()) {
    case volume_server_pb::ReceiveFileRequest::kFileContent:
      resp->set_error("file info must be sent first");
      return grpc::Status::OK;
    case volume_server_pb::ReceiveFileRequest::DATA_NOT_SET:
      resp->set_error("unknown message type");
      return grpc::Status::OK;
    case volume_server_pb::ReceiveFileRequest::kInfo:
      break;
  }
  if (!opened.error().empty()) {
    resp->set_error(opened.error());
    return grpc::Status::OK;
  }
  auto done = [&](bool failed) {
    kelp_internal::ReceiveFileFinish f;
    f.set_path(opened.path());
    f.set_failed(failed);
    kelp_internal::ReceiveFileFinished ignored;
    return supervisor_->Call("kelp.FinishReceivedFile", f, &ignored);
  };
  uint64_t written = 0;
  while (reader->Read(&msg)) {
    switch (msg.data_case()) {
      case volume_server_pb::ReceiveFileRequest::kFileContent: {
        const std::string& bytes = msg.file_content();
        if (Status w = PwriteFull(file.fd, bytes.data(), bytes.size(), off_t(written)); !w.ok()) {
          file.Reset();
          done(true);
          resp->set_error("failed to write file: write " + opened.path() + ": " + w.message());
          return grpc::Status::OK;
        }
        written += bytes.size();
        break;
      }
      case volume_server_pb::ReceiveFileRequest::kInfo:
        break;  // Go takes a later info as the file's again, without reopening
      case volume_server_pb::ReceiveFileRequest::DATA_NOT_SET:
        file.Reset();
        done(true);
        resp->set_error("unknown message type");
        return grpc::Status::OK;
    }
  }
  if (ctx->IsCancelled()) {
    file.Reset();
    done(true);
    return grpc::Status(grpc::StatusCode::UNKNOWN, "failed to receive stream: context canceled");
  }
  fdatasync(file.fd);  // Go syncs and ignores the result
  file.Reset();
  // The supervisor no longer knows the file (it removed it when it took this
  // worker for gone): the push did not land.
  if (grpc::Status s = done(false); !s.ok()) {
    resp->set_error("failed to write file: " + s.error_message());
    return grpc::Status::OK;
  }
  resp->set_bytes_written(written);
  return grpc::Status::OK;
}

}  // namespace kelp
