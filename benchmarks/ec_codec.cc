// The erasure coding codec on this machine: ISA-L (what kelp ships, through
// common/rs_codec) against Jerasure driven with the same generator matrix.
// Both must produce the same bytes; the program checks that first.
//
// Usage: build/bench/bin/ec-codec-bench [MiB per data shard, default 64] [rounds, default 5]
// Prints MB/s of data encoded (10 data shards in, 4 parity out) and of data
// rebuilt (4 shards lost: data shards 0-3), the median of the rounds.
#include <jerasure.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "common/rs_codec.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? size_t(std::atol(argv[1])) : 64;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const size_t len = mib << 20;
  constexpr int k = 10, m = 4;
  auto made = kelp::RsCodec::Make(k, m);
  if (!made.ok()) return 1;
  const kelp::RsCodec& codec = made.value();

  std::vector<std::vector<uint8_t>> data(k, std::vector<uint8_t>(len));
  std::mt19937_64 rng(42);
  for (auto& d : data)
    for (size_t i = 0; i < len; i += 8) {
      const uint64_t x = rng();
      std::memcpy(&d[i], &x, std::min<size_t>(8, len - i));
    }
  std::vector<std::vector<uint8_t>> isal(m, std::vector<uint8_t>(len)), jer(m, std::vector<uint8_t>(len));
  std::vector<const uint8_t*> in;
  std::vector<uint8_t*> out;
  std::vector<char*> jin, jout;
  for (auto& d : data) in.push_back(d.data()), jin.push_back(reinterpret_cast<char*>(d.data()));
  for (auto& p : isal) out.push_back(p.data());
  for (auto& p : jer) jout.push_back(reinterpret_cast<char*>(p.data()));
  std::vector<int> matrix;
  for (int p = 0; p < m; p++)
    for (int c = 0; c < k; c++) matrix.push_back(codec.Row(k + p)[c]);

  std::vector<double> isal_enc, jer_enc, isal_rebuild, jer_rebuild;
  for (int r = 0; r < rounds; r++) {
    auto t0 = Clock::now();
    codec.Encode(in.data(), out.data(), len);
    auto t1 = Clock::now();
    jerasure_matrix_encode(k, m, 8, matrix.data(), jin.data(), jout.data(), int(len));
    auto t2 = Clock::now();
    isal_enc.push_back(Seconds(t0, t1));
    jer_enc.push_back(Seconds(t1, t2));
    if (r == 0 && isal != jer) {
      std::fprintf(stderr, "Jerasure and ISA-L disagree: not the same code\n");
      return 1;
    }

    // Lose data shards 0-3; rebuild them from 4-9 and the parity.
    std::vector<int> have = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, lost = {0, 1, 2, 3};
    std::vector<const uint8_t*> hin;
    for (int id : have) hin.push_back(id < k ? data[size_t(id)].data() : isal[size_t(id - k)].data());
    std::vector<std::vector<uint8_t>> rebuilt(4, std::vector<uint8_t>(len));
    std::vector<uint8_t*> rout;
    for (auto& b : rebuilt) rout.push_back(b.data());
    auto t3 = Clock::now();
    if (!codec.Reconstruct(have, hin.data(), lost, rout.data(), len).ok()) return 1;
    auto t4 = Clock::now();
    isal_rebuild.push_back(Seconds(t3, t4));
    for (int i = 0; i < 4; i++)
      if (rebuilt[size_t(i)] != data[size_t(i)]) {
        std::fprintf(stderr, "ISA-L rebuilt shard %d wrong\n", i);
        return 1;
      }
    // Jerasure decodes in place: copies of the data shards with 0-3 wiped.
    std::vector<std::vector<uint8_t>> jd = data, jc = jer;
    for (int i = 0; i < 4; i++) std::fill(jd[size_t(i)].begin(), jd[size_t(i)].end(), 0);
    std::vector<char*> jdp, jcp;
    for (auto& d : jd) jdp.push_back(reinterpret_cast<char*>(d.data()));
    for (auto& c : jc) jcp.push_back(reinterpret_cast<char*>(c.data()));
    int erasures[] = {0, 1, 2, 3, -1};
    auto t5 = Clock::now();
    if (jerasure_matrix_decode(k, m, 8, matrix.data(), 0, erasures, jdp.data(), jcp.data(), int(len)) != 0) return 1;
    auto t6 = Clock::now();
    jer_rebuild.push_back(Seconds(t5, t6));
    for (int i = 0; i < 4; i++)
      if (jd[size_t(i)] != data[size_t(i)]) {
        std::fprintf(stderr, "Jerasure rebuilt shard %d wrong\n", i);
        return 1;
      }
  }
  const double mb = double(k) * double(len) / double(1 << 20);
  std::printf("10+4, %zu MiB per data shard (%.0f MiB of data), median of %d rounds; MB = 2^20 bytes\n", mib, mb, rounds);
  std::printf("| codec | encode MB/s | rebuild of 4 data shards MB/s |\n|---|---:|---:|\n");
  std::printf("| ISA-L | %.0f | %.0f |\n", mb / Median(isal_enc), mb / Median(isal_rebuild));
  std::printf("| Jerasure | %.0f | %.0f |\n", mb / Median(jer_enc), mb / Median(jer_rebuild));
  std::printf("identical parity and rebuilt shards: yes\n");
  return 0;
}
