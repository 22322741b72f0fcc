// The data of a large needle of an erasure-coded volume, read as it is sent:
// windows of at most kEcStreamWindow bytes are gathered on the thread pool
// (common/ec_client/ec_gather.h), one gathered ahead while the one before is
// written, so a read holds a few windows at most, whatever the needle's size.
// The CRC of the whole data is checked before its last window is handed out:
// a corrupt needle never reaches a client complete (the connection closes).
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>

#include "worker-http/blob_reader.h"
#include "common/ec_client/ec_gather.h"

namespace kelp {

inline constexpr uint64_t kEcStreamWindow = 1 << 20;

class EcBlobData : public StreamedBlobData {
 public:
  // The needle's record has the header size field `size` (version 2 or 3);
  // its data is `data_size` bytes with CRC `crc`, right after the data size.
  EcBlobData(uv_loop_t* loop, EcPeers* peers, std::shared_ptr<const EcNeedleSite> site, uint32_t size, uint8_t version, uint64_t data_size,
             uint32_t crc)
      : loop_(loop), peers_(peers), site_(std::move(site)), size_(size), version_(version), data_size_(data_size), crc_(crc) {}

  std::unique_ptr<http::BodySource> Slice(uint64_t start, uint64_t length) override;
  void Peek(uint64_t at, size_t n, std::function<void(Status, std::string)> done) override;
  void ReadWhole(std::function<void(Status, StoredBlob)> done) override;

 private:
  uv_loop_t* loop_;
  EcPeers* peers_;
  std::shared_ptr<const EcNeedleSite> site_;
  uint32_t size_;
  uint8_t version_;
  uint64_t data_size_;
  uint32_t crc_;
};

}  // namespace kelp
