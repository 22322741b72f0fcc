#include <doctest/doctest.h>

#include "worker-http/chunk_manifest.h"

using namespace kelp;

TEST_CASE("chunk manifest: Go's JSON reading, chunks sorted by offset") {
  auto m = ParseChunkManifest(
      R"({"name":"big.txt","mime":"text/plain","size":22,"extra":[1],
          "chunks":[{"fid":"6,0242d1f22c","offset":10,"size":7},{"fid":"2,01baa49a3b","offset":0,"size":10},
                    {"fid":"7,0391750681","offset":17,"size":5}]})");
  REQUIRE(m.ok());
  CHECK(m.value().name == "big.txt");
  CHECK(m.value().mime == "text/plain");
  CHECK(m.value().size == 22);
  REQUIRE(m.value().chunks.size() == 3);
  CHECK(m.value().chunks[0].fid == "2,01baa49a3b");
  CHECK(m.value().chunks[1].offset == 10);
  CHECK(m.value().chunks[2].fid == "7,0391750681");
  CHECK(m.value().TotalSize() == 22);
}

TEST_CASE("chunk manifest: keys match case-insensitively, null leaves a field empty") {
  auto m = ParseChunkManifest(R"({"NAME":"x","Mime":null,"chunks":[{"Fid":"1,01","OFFSET":0,"Size":3}]})");
  REQUIRE(m.ok());
  CHECK(m.value().name == "x");
  CHECK(m.value().mime.empty());
  CHECK(m.value().chunks.at(0).fid == "1,01");
  CHECK(m.value().chunks.at(0).size == 3);
  auto empty = ParseChunkManifest("null");
  REQUIRE(empty.ok());
  CHECK(empty.value().chunks.empty());
}

TEST_CASE("chunk manifest: wrong types and non-JSON are errors") {
  CHECK_FALSE(ParseChunkManifest("not json").ok());
  CHECK_FALSE(ParseChunkManifest("[]").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"size":"22"})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"size":1.5})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"size":1e3})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"chunks":{}})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"chunks":[1]})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"chunks":[{"fid":3}]})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"chunks":[{"fid":"1,1","size":-1}]})").ok());
  CHECK_FALSE(ParseChunkManifest(R"({"size":18446744073709551615})").ok());
  CHECK_FALSE(ParseChunkManifest(
      R"({"chunks":[{"fid":"1,1","size":9223372036854775807},{"fid":"1,2","size":9223372036854775807}]})").ok());
}

TEST_CASE("chunk manifest: the pieces of a span") {
  const std::vector<ChunkInfo> chunks = {{"a", 0, 10}, {"b", 10, 7}, {"c", 17, 5}};
  auto pieces = PiecesFor(chunks, 8, 5);  // 8..12: the end of a, the start of b
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].chunk == 0);
  CHECK(pieces[0].from == 8);
  CHECK(pieces[0].length == 2);
  CHECK(pieces[1].chunk == 1);
  CHECK(pieces[1].from == 0);
  CHECK(pieces[1].length == 3);
  auto all = PiecesFor(chunks, 0, 22);
  REQUIRE(all.size() == 3);
  CHECK(all[2].length == 5);
  auto tail = PiecesFor(chunks, 21, 100);  // clipped at the end
  REQUIRE(tail.size() == 1);
  CHECK(tail[0].chunk == 2);
  CHECK(tail[0].from == 4);
  CHECK(tail[0].length == 1);
  CHECK(PiecesFor(chunks, 22, 5).empty());
  CHECK(PiecesFor(chunks, 3, 0).empty());
  // An empty chunk contributes nothing.
  auto holey = PiecesFor({{"a", 0, 2}, {"e", 2, 0}, {"b", 2, 2}}, 1, 2);
  REQUIRE(holey.size() == 2);
  CHECK(holey[1].chunk == 2);
}
