#include <doctest/doctest.h>

#include <xxhash.h>

#include "supervisor/volume_report.h"

using namespace kelp;
using master_pb::Heartbeat;
using master_pb::VolumeInformationMessage;

namespace {

VolumeInformationMessage Volume(uint32_t id, uint64_t size = 1000, uint64_t files = 3) {
  VolumeInformationMessage m;
  m.set_id(id);
  m.set_size(size);
  m.set_file_count(files);
  m.set_collection("pics");
  m.set_version(3);
  m.set_replica_placement(1);
  m.set_modified_at_second(1700000000);
  m.set_disk_type("");
  m.set_disk_id(0);
  return m;
}

Heartbeat Holding(std::initializer_list<VolumeInformationMessage> volumes) {
  Heartbeat hb;
  for (const auto& v : volumes) *hb.add_volumes() = v;
  return hb;
}

}  // namespace

TEST_CASE("the volume report hash covers every field the master stores, and only as it stores them") {
  // The library is xxHash64 with seed 0, as the master's.
  CHECK(XXH64("", 0, 0) == 0xEF46DB3751D8E999ull);
  const VolumeInformationMessage base = Volume(7);
  const uint64_t h = VolumeReportHash(base);
  CHECK(h == VolumeReportHash(Volume(7)));
  auto differs = [&](auto change) {
    VolumeInformationMessage m = base;
    change(m);
    return VolumeReportHash(m) != h;
  };
  CHECK(differs([](auto& m) { m.set_id(8); }));
  CHECK(differs([](auto& m) { m.set_size(1001); }));
  CHECK(differs([](auto& m) { m.set_file_count(4); }));
  CHECK(differs([](auto& m) { m.set_delete_count(1); }));
  CHECK(differs([](auto& m) { m.set_deleted_byte_count(1); }));
  CHECK(differs([](auto& m) { m.set_read_only(true); }));
  CHECK(differs([](auto& m) { m.set_replica_placement(10); }));
  CHECK(differs([](auto& m) { m.set_version(2); }));
  CHECK(differs([](auto& m) { m.set_ttl(0x0301); }));
  CHECK(differs([](auto& m) { m.set_compact_revision(1); }));
  CHECK(differs([](auto& m) { m.set_modified_at_second(1700000001); }));
  CHECK(differs([](auto& m) { m.set_collection("other"); }));
  CHECK(differs([](auto& m) { m.set_disk_type("ssd"); }));
  CHECK(differs([](auto& m) { m.set_remote_storage_name("s3"); }));
  CHECK(differs([](auto& m) { m.set_disk_id(1); }));
  // Fields the master does not keep do not count.
  CHECK_FALSE(differs([](auto& m) { m.set_remote_storage_key("k"); }));
  CHECK_FALSE(differs([](auto& m) { m.set_ttl(0x0005); }));  // a count of 0 is no TTL
  // Counts are kept in 32 bits, saturated.
  VolumeInformationMessage a = base, b = base;
  a.set_file_count(0xffffffffull);
  b.set_file_count(0x1ffffffffull);
  CHECK(VolumeReportHash(a) == VolumeReportHash(b));
  // The strings are folded in order: swapping two values is seen.
  VolumeInformationMessage c = base, d = base;
  c.set_collection("x");
  c.set_disk_type("y");
  d.set_collection("y");
  d.set_disk_type("x");
  CHECK(VolumeReportHash(c) != VolumeReportHash(d));
}

TEST_CASE("reports carry the whole list until the master compares digests, then only changes and departures") {
  VolumeReportState state;
  state.Reset();
  const auto v1 = Volume(1), v2 = Volume(2);
  const uint64_t digest = VolumeReportHash(v1) ^ VolumeReportHash(v2);

  Heartbeat first = Holding({v1, v2});
  state.Shape(&first);
  CHECK(first.volumes_size() == 2);
  CHECK(first.changed_volumes_size() == 0);
  CHECK(first.has_volume_digest());
  CHECK(first.volume_digest() == digest);

  // Not accepted yet: a second pulse is whole again.
  Heartbeat second = Holding({v1, v2});
  state.Shape(&second);
  CHECK(second.volumes_size() == 2);

  state.AcceptDeltas();
  Heartbeat quiet = Holding({v1, v2});
  state.Shape(&quiet);
  CHECK(quiet.volumes_size() == 0);
  CHECK(quiet.changed_volumes_size() == 0);
  CHECK(quiet.deleted_volumes_size() == 0);
  CHECK_FALSE(quiet.has_no_volumes());
  CHECK(quiet.volume_digest() == digest);  // the digest covers volumes not sent

  // v2 gains a file; v3 arrives; v1 leaves.
  const auto v2b = Volume(2, 2000, 4), v3 = Volume(3);
  Heartbeat busy = Holding({v2b, v3});
  state.Shape(&busy);
  CHECK(busy.volumes_size() == 0);
  REQUIRE(busy.changed_volumes_size() == 2);
  CHECK(busy.changed_volumes(0).id() == 2);
  CHECK(busy.changed_volumes(0).size() == 2000);
  CHECK(busy.changed_volumes(1).id() == 3);
  REQUIRE(busy.deleted_volumes_size() == 1);
  CHECK(busy.deleted_volumes(0).id() == 1);
  CHECK(busy.deleted_volumes(0).collection() == "pics");
  CHECK(busy.volume_digest() == (VolumeReportHash(v2b) ^ VolumeReportHash(v3)));

  // The last volume leaves: an empty delta is not "has no volumes".
  Heartbeat empty = Holding({});
  state.Shape(&empty);
  CHECK(empty.deleted_volumes_size() == 2);
  CHECK_FALSE(empty.has_no_volumes());
  CHECK(empty.volume_digest() == 0);
  CHECK(empty.has_volume_digest());

  // The master asks for the whole list: one whole report, which says it is empty, then changes again.
  state.RequestFullList();
  Heartbeat whole = Holding({});
  state.Shape(&whole);
  CHECK(whole.has_no_volumes());
  CHECK(whole.deleted_volumes_size() == 0);
  Heartbeat after = Holding({v1});
  state.Shape(&after);
  CHECK(after.volumes_size() == 0);
  CHECK(after.changed_volumes_size() == 1);

  // A new session forgets everything: whole lists until accepted again.
  state.Reset();
  Heartbeat fresh = Holding({v1});
  state.Shape(&fresh);
  CHECK(fresh.volumes_size() == 1);
  CHECK_FALSE(state.deltas_accepted());
}

TEST_CASE("a whole list that follows changes names no departures, and a moved copy is not a departure") {
  VolumeReportState state;
  state.Reset();
  state.AcceptDeltas();
  auto on0 = Volume(5);
  Heartbeat a = Holding({on0});
  state.Shape(&a);  // whole: the first after Reset
  CHECK(a.volumes_size() == 1);
  auto on1 = on0;
  on1.set_disk_id(1);
  Heartbeat b = Holding({on1});
  state.Shape(&b);
  CHECK(b.changed_volumes_size() == 1);
  CHECK(b.deleted_volumes_size() == 0);  // volume 5 is still held, on another disk
  state.RequestFullList();
  Heartbeat c = Holding({});
  state.Shape(&c);
  CHECK(c.deleted_volumes_size() == 0);
  CHECK(c.has_no_volumes());
}
