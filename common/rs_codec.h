// Reed-Solomon over GF(2^8) (polynomial 0x11D) with the generator matrix
// SeaweedFS's erasure coding uses: the (data+parity) x data Vandermonde matrix
// V[r][c] = r^c (0^0 = 1), multiplied by the inverse of its top square so
// that the first `data` rows are the identity. Shard i of a stripe is row i of
// that matrix applied to the data shards, byte position by byte position, so
// the output never depends on how a caller cuts its buffers.
//
// Invariant: a shard computed here is byte for byte the one Go's encoder
// computes from the same data, for every ratio Go accepts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace kelp {

// Go accepts 0 < data, 0 < parity, data + parity <= 32 from a .vif.
inline constexpr int kMaxEcShards = 32;
inline constexpr int kDefaultEcData = 10;
inline constexpr int kDefaultEcParity = 4;

class RsCodec {
 public:
  // Invalid unless 0 < data, 0 < parity and data + parity <= kMaxEcShards.
  static Result<RsCodec> Make(int data, int parity);

  int data() const { return data_; }
  int parity() const { return parity_; }
  int total() const { return data_ + parity_; }

  // Row `shard` of the generator matrix: `data()` coefficients.
  const uint8_t* Row(int shard) const { return &matrix_[size_t(shard) * size_t(data_)]; }

  // parity[p][0, len) = row data()+p applied to data[0..data())[0, len).
  void Encode(const uint8_t* const* data, uint8_t* const* parity, size_t len) const;

  // Computes the shards `wanted` from the `data()` shards `have` (distinct
  // ids, any of the total). `in[i]` holds shard have[i], `out[j]` receives
  // shard wanted[j]; every buffer is `len` bytes. Fails without touching
  // `out` when `have` is not data() distinct valid ids or `wanted` has an
  // invalid id.
  Status Reconstruct(const std::vector<int>& have, const uint8_t* const* in, const std::vector<int>& wanted, uint8_t* const* out,
                     size_t len) const;

 private:
  RsCodec(int data, int parity, std::vector<uint8_t> matrix, std::vector<uint8_t> parity_tables)
      : data_(data), parity_(parity), matrix_(std::move(matrix)), parity_tables_(std::move(parity_tables)) {}
  int data_;
  int parity_;
  std::vector<uint8_t> matrix_;         // total() x data(), row-major
  std::vector<uint8_t> parity_tables_;  // the encoder's expanded tables for the parity rows
};

}  // namespace kelp
