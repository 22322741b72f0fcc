#include "common/rs_codec.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <string>

namespace kelp {
namespace {

// ISA-L's GF(2^8) is the 0x11D field, generator 2: the one Go's codec uses.
uint8_t Power(uint8_t base, int exponent) {
  uint8_t out = 1;  // 0^0 = 1, as the Vandermonde construction takes it
  for (int i = 0; i < exponent; i++) out = gf_mul(out, base);
  return out;
}

// a (n x k) times b (k x m), row-major.
std::vector<uint8_t> Multiply(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int n, int k, int m) {
  std::vector<uint8_t> out(size_t(n) * size_t(m), 0);
  for (int r = 0; r < n; r++)
    for (int c = 0; c < m; c++) {
      uint8_t acc = 0;
      for (int i = 0; i < k; i++) acc ^= gf_mul(a[size_t(r) * size_t(k) + size_t(i)], b[size_t(i) * size_t(m) + size_t(c)]);
      out[size_t(r) * size_t(m) + size_t(c)] = acc;
    }
  return out;
}

// The expanded multiplication tables ISA-L's encoder takes: 32 bytes per coefficient.
std::vector<uint8_t> Tables(int k, int rows, std::vector<uint8_t> coefficients) {
  std::vector<uint8_t> tables(size_t(32) * size_t(k) * size_t(std::max(rows, 1)));
  if (rows > 0) ec_init_tables(k, rows, coefficients.data(), tables.data());
  return tables;
}

// Applies `rows` rows of expanded tables to the k buffers `in`, into `out`,
// in pieces ISA-L's int length can take. ISA-L takes non-const pointers; it
// only reads `in` and the tables.
void ApplyTables(const std::vector<uint8_t>& tables, int k, int rows, const uint8_t* const* in, uint8_t* const* out, size_t len) {
  constexpr size_t kStep = size_t(1) << 30;
  for (size_t done = 0; done < len; done += kStep) {
    const size_t n = std::min(kStep, len - done);
    unsigned char* src[kMaxEcShards];
    unsigned char* dst[kMaxEcShards];
    for (int i = 0; i < k; i++) src[i] = const_cast<unsigned char*>(in[i]) + done;
    for (int j = 0; j < rows; j++) dst[j] = out[j] + done;
    ec_encode_data(int(n), k, rows, const_cast<unsigned char*>(tables.data()), src, dst);
  }
}

}  // namespace

Result<RsCodec> RsCodec::Make(int data, int parity) {
  if (data <= 0 || parity <= 0 || data + parity > kMaxEcShards)
    return Status::Invalid("invalid erasure coding ratio " + std::to_string(data) + "+" + std::to_string(parity));
  const int total = data + parity;
  std::vector<uint8_t> vandermonde(size_t(total) * size_t(data));
  for (int r = 0; r < total; r++)
    for (int c = 0; c < data; c++) vandermonde[size_t(r) * size_t(data) + size_t(c)] = Power(uint8_t(r), c);
  std::vector<uint8_t> top(vandermonde.begin(), vandermonde.begin() + ptrdiff_t(data) * data);
  std::vector<uint8_t> top_inverse(top.size());
  // Rows 0..data-1 are r^c for distinct r: the square is always invertible.
  if (gf_invert_matrix(top.data(), top_inverse.data(), data) != 0)
    return Status::Corruption("erasure coding matrix " + std::to_string(data) + "+" + std::to_string(parity) + " is singular");
  std::vector<uint8_t> matrix = Multiply(vandermonde, top_inverse, total, data, data);
  std::vector<uint8_t> parity_rows(matrix.begin() + ptrdiff_t(data) * data, matrix.end());
  std::vector<uint8_t> tables = Tables(data, parity, std::move(parity_rows));
  return RsCodec(data, parity, std::move(matrix), std::move(tables));
}

void RsCodec::Encode(const uint8_t* const* data, uint8_t* const* parity, size_t len) const {
  ApplyTables(parity_tables_, data_, parity_, data, parity, len);
}

Status RsCodec::Reconstruct(const std::vector<int>& have, const uint8_t* const* in, const std::vector<int>& wanted, uint8_t* const* out,
                            size_t len) const {
  if (int(have.size()) != data_) return Status::Invalid("reconstruction needs " + std::to_string(data_) + " shards, got " + std::to_string(have.size()));
  bool seen[kMaxEcShards] = {};
  for (int id : have) {
    if (id < 0 || id >= total() || seen[id]) return Status::Invalid("invalid or repeated shard id " + std::to_string(id));
    seen[id] = true;
  }
  if (wanted.size() > size_t(kMaxEcShards)) return Status::Invalid("too many shards wanted: " + std::to_string(wanted.size()));
  for (int id : wanted)
    if (id < 0 || id >= total()) return Status::Invalid("invalid shard id " + std::to_string(id));
  if (wanted.empty() || len == 0) return Status::Ok();

  // have_rows * data = shards in `have`, so data = inverse(have_rows) * in,
  // and shard w = Row(w) * inverse(have_rows) * in.
  std::vector<uint8_t> have_rows(size_t(data_) * size_t(data_));
  for (int i = 0; i < data_; i++) std::copy_n(Row(have[size_t(i)]), data_, have_rows.begin() + ptrdiff_t(i) * data_);
  std::vector<uint8_t> inverse(have_rows.size());
  if (gf_invert_matrix(have_rows.data(), inverse.data(), data_) != 0)
    return Status::Corruption("erasure coding submatrix is singular");  // cannot happen for a Vandermonde-derived code
  std::vector<uint8_t> wanted_rows(wanted.size() * size_t(data_));
  for (size_t j = 0; j < wanted.size(); j++) std::copy_n(Row(wanted[j]), data_, wanted_rows.begin() + ptrdiff_t(j) * data_);
  const std::vector<uint8_t> decode = Multiply(wanted_rows, inverse, int(wanted.size()), data_, data_);
  ApplyTables(Tables(data_, int(wanted.size()), decode), data_, int(wanted.size()), in, out, len);
  return Status::Ok();
}

}  // namespace kelp
