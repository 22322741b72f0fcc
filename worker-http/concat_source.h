// A body made of literal pieces and streamed pieces, in order: the framing of
// a multipart/byteranges response around ranges streamed from a volume or
// assembled from chunks.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "worker-http/http_types.h"

namespace kelp {

class ConcatSource : public http::BodySource {
 public:
  void AddLiteral(std::string bytes);
  void AddStream(std::unique_ptr<http::BodySource> source);

  uint64_t Length() const override { return length_; }
  bool Next(std::string* chunk) override;
  bool Failed() const override { return failed_; }
  // A streamed piece fed from the network may be waiting for its bytes.
  bool Pending() const override;
  void OnReady(std::function<void()> wake) override;

 private:
  struct Piece {
    std::string literal;
    std::unique_ptr<http::BodySource> stream;
  };
  std::vector<Piece> pieces_;
  size_t next_ = 0;
  uint64_t length_ = 0;
  bool failed_ = false;
};

}  // namespace kelp
