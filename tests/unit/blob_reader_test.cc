#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "common/crc32c.h"
#include "common/needle.h"
#include "worker-http/blob_reader.h"

using namespace kelp;

namespace {

// A version-3 record with every optional field, and its data.
std::string FullRecord(const std::string& data) {
  NeedleFields f;
  f.cookie = 0x5eed1234;
  f.id = 0xabcdef;
  f.data = data;
  f.name = "page.html";
  f.mime = "text/html";
  f.last_modified = 1700000000;
  f.pairs = R"({"Seaweed-Color":"green"})";
  f.append_at_ns = 1700000000123456789ull;
  SetContentFlags(&f);
  return EncodeNeedleV3(f);
}

// The record without its data, as a streamed blob holds it.
StoredBlob WithoutData(const std::string& record, uint64_t data_size) {
  StoredBlob blob;
  const size_t after = kNeedleHeaderSize + 4 + data_size;
  const size_t len = kNeedleHeaderSize + (record.size() - after);
  blob.record = http::ByteBuffer::Uninitialized(len);
  std::memcpy(blob.record.data(), record.data(), kNeedleHeaderSize);
  std::memcpy(blob.record.data() + kNeedleHeaderSize, record.data() + after, record.size() - after);
  return blob;
}

}  // namespace

TEST_CASE("a record without its data parses to the fields of the whole record") {
  const std::string data(5000, 'x');
  const std::string record = FullRecord(data);
  ParsedNeedle whole;
  REQUIRE(ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record.data())).size,
                      3, &whole)
              .ok());
  StoredBlob blob = WithoutData(record, data.size());
  REQUIRE(ParseRecordWithoutData(3, data.size(), &blob).ok());
  CHECK(blob.streamed);
  CHECK(blob.data_size == data.size());
  CHECK(blob.needle.data.empty());
  CHECK(blob.needle.header.cookie == whole.header.cookie);
  CHECK(blob.needle.header.id == whole.header.id);
  CHECK(blob.needle.header.size == whole.header.size);
  CHECK(blob.needle.flags == whole.flags);
  CHECK(blob.needle.name == whole.name);
  CHECK(blob.needle.mime == whole.mime);
  CHECK(blob.needle.last_modified == whole.last_modified);
  CHECK(blob.needle.pairs == whole.pairs);
  CHECK(blob.needle.checksum == whole.checksum);
  CHECK(whole.checksum == Crc32c(data.data(), data.size()));
  CHECK(blob.needle.append_at_ns == 1700000000123456789ull);
}

TEST_CASE("a record without its data that lies about its lengths is refused") {
  const std::string data(3000, 'y');
  const std::string record = FullRecord(data);
  SUBCASE("a data size past the header's size") {
    StoredBlob blob = WithoutData(record, data.size());
    CHECK_FALSE(ParseRecordWithoutData(3, uint64_t(ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record.data())).size), &blob).ok());
  }
  SUBCASE("a data size other than the one the bytes were cut at") {
    StoredBlob blob = WithoutData(record, data.size());
    CHECK_FALSE(ParseRecordWithoutData(3, data.size() - 8, &blob).ok());
  }
  SUBCASE("a record shorter than its header") {
    StoredBlob blob;
    blob.record = http::ByteBuffer::Uninitialized(8);
    std::memset(blob.record.data(), 0, 8);
    CHECK_FALSE(ParseRecordWithoutData(3, 0, &blob).ok());
  }
  SUBCASE("version 1 has no data size to stream by") {
    StoredBlob blob = WithoutData(record, data.size());
    CHECK_FALSE(ParseRecordWithoutData(1, data.size(), &blob).ok());
  }
}
