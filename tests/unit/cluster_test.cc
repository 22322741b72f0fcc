#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "common/server_config.h"
#include "ipc/bulk.h"
#include "supervisor/admin_service.h"
#include "supervisor/heartbeat_report.h"
#include "supervisor/store.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
namespace fs = std::filesystem;

namespace {

ServerConfig TestConfig() {
  ServerConfig c;
  c.ip = "10.0.0.5";
  c.port = 8080;
  c.grpc_port = 18080;
  c.public_url = "pub.example:8080";
  c.id = "node-a";
  c.data_center = "dc1";
  c.rack = "r1";
  return c;
}

}  // namespace

TEST_CASE("master gRPC addresses: explicit .grpcPort, else port + 10000") {
  CHECK(MasterGrpcAddress("localhost:9333") == "localhost:19333");
  CHECK(MasterGrpcAddress("10.1.1.1:9333.29333") == "10.1.1.1:29333");
  CHECK(MasterGrpcAddress("[::1]:9333") == "[::1]:19333");
  CHECK(MasterGrpcAddress("nohost") == "nohost");
}

TEST_CASE("bulk payloads round-trip inline and through a memfd") {
  int fds[2];
  REQUIRE(ipc::Channel::Pair(fds));
  ipc::Channel a(fds[0]), b(fds[1]);
  for (size_t size : {size_t(0), size_t(100), size_t(ipc::kMaxDatagram - 8), size_t(3 << 20)}) {
    std::string body(size, '\0');
    for (size_t i = 0; i < size; ++i) body[i] = char(i * 131 + size);
    const std::string fixed = "FIXED123";
    REQUIRE(ipc::SendBulk(a, ipc::MsgType::kAdminReply, 42, fixed, body));
    ipc::Message m;
    REQUIRE(b.Recv(&m) == ipc::RecvResult::kMessage);
    CHECK(m.header.request_id == 42);
    CHECK(m.payload.substr(0, fixed.size()) == fixed);
    std::string got;
    REQUIRE(ipc::ReadBulk(m, fixed.size(), &got));
    CHECK(got == body);
    CHECK(m.fds.size() == (fixed.size() + size > ipc::kMaxDatagram ? 1u : 0u));
    m.CloseFds();
  }
  // A fixed part longer than the message is malformed, not a crash.
  REQUIRE(ipc::SendBulk(a, ipc::MsgType::kAdminReply, 1, "abc", ""));
  ipc::Message m;
  REQUIRE(b.Recv(&m) == ipc::RecvResult::kMessage);
  std::string got;
  CHECK_FALSE(ipc::ReadBulk(m, 10, &got));
}

TEST_CASE("a sealed memfd holds its pieces in order and refuses any change") {
  const std::string big(3 << 20, 'b');
  const int fd = ipc::SealedMemfd("kelp-test", {"head", "", big, "tail"});
  REQUIRE(fd >= 0);
  std::string got(4 + big.size() + 4, '\0');
  REQUIRE(PreadFull(fd, got.data(), got.size(), 0).ok());
  CHECK(got == "head" + big + "tail");
  struct stat st;
  REQUIRE(fstat(fd, &st) == 0);
  CHECK(uint64_t(st.st_size) == got.size());
  const int seals = fcntl(fd, F_GET_SEALS);
  CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL));
  CHECK(pwrite(fd, "x", 1, 0) < 0);
  CHECK(ftruncate(fd, 1) != 0);
  close(fd);
}

TEST_CASE("the full heartbeat report describes every volume and location") {
  testing::TempDir d1, d2;
  Store store({{d1.path.string(), d1.path.string(), 3, "", "", 3}, {d2.path.string(), d2.path.string(), 5, "ssd", "", 5}}, 4);
  REQUIRE(store.LoadAll().ok());
  NewVolumeSpec spec;
  spec.id = 7;
  spec.collection = "pics";
  spec.super_block.replica_placement = ReplicaPlacement::FromByte(1);
  spec.super_block.ttl = Ttl{3, uint8_t(TtlUnit::kDay)};
  REQUIRE(store.AddVolume(spec).ok());
  spec.id = 8;
  spec.collection = "";
  spec.disk_type = "ssd";
  REQUIRE(store.AddVolume(spec).ok());
  CHECK(store.AddVolume(spec).status().message() == "Volume Id 8 already exists!");
  spec.id = 9;
  spec.disk_type = "nvme";
  CHECK(store.AddVolume(spec).status().message() == "No more free space left");

  const ServerConfig cfg = TestConfig();
  ServerIdentity who{&cfg, {}};
  const master_pb::Heartbeat hb = FullReport(store, who);
  CHECK(hb.ip() == "10.0.0.5");
  CHECK(hb.port() == 8080);
  CHECK(hb.grpc_port() == 18080);
  CHECK(hb.public_url() == "pub.example:8080");
  CHECK(hb.id() == "node-a");
  CHECK(hb.data_center() == "dc1");
  CHECK(hb.rack() == "r1");
  CHECK(hb.max_volume_counts().at("") == 3);
  CHECK(hb.max_volume_counts().at("ssd") == 5);
  CHECK(hb.location_uuids_size() == 2);
  CHECK(hb.location_uuids(0).size() == 36);
  CHECK_FALSE(hb.has_no_volumes());
  REQUIRE(hb.volumes_size() == 2);
  const auto& v7 = hb.volumes(0);
  CHECK(v7.id() == 7);
  CHECK(v7.collection() == "pics");
  CHECK(v7.replica_placement() == 1);
  CHECK(v7.ttl() == (3u << 8 | uint32_t(TtlUnit::kDay)));
  CHECK(v7.version() == 3);
  CHECK(v7.size() == 8);
  CHECK(v7.disk_type() == "");
  CHECK(hb.volumes(1).disk_type() == "ssd");
  CHECK(hb.volumes(1).disk_id() == 1);
  // The directory uuid is kept across restarts: Go and kelp share vol_dir.uuid.
  std::ifstream in(d1.path / "vol_dir.uuid");
  std::string uuid;
  in >> uuid;
  CHECK(uuid == hb.location_uuids(0));
}

TEST_CASE("admin requests are decoded, validated and answered with Go's texts") {
  testing::TempDir d;
  Store store({{d.path.string(), d.path.string(), 8, "", "", 8}}, 4);
  REQUIRE(store.LoadAll().ok());
  const ServerConfig cfg = TestConfig();
  int added = 0, removed = 0;
  AdminHooks hooks;
  hooks.volume_added = [&](Volume*) { ++added; };
  hooks.volume_removed = [&](VolumeId, const master_pb::VolumeShortInformationMessage&) { ++removed; };
  hooks.volumes_changed = [] {};
  AdminService admin(&store, &cfg, hooks);
  std::string out;
  auto call = [&](const char* method, const google::protobuf::Message& req) {
    std::string in;
    req.SerializeToString(&in);
    out.clear();
    return admin.Handle(method, in, &out);
  };
  volume_server_pb::AllocateVolumeRequest alloc;
  alloc.set_volume_id(3);
  alloc.set_collection("../up");
  alloc.set_version(3);
  CHECK(call("AllocateVolume", alloc).error_message() == "invalid collection \"../up\"");
  alloc.set_collection("ok");
  alloc.set_replication("300");
  CHECK(call("AllocateVolume", alloc).error_message() == "unexpected replication type: 300");
  alloc.set_replication("001");
  CHECK(call("AllocateVolume", alloc).ok());
  CHECK(added == 1);
  CHECK(fs::exists(d.path / "ok_3.dat"));
  CHECK(call("AllocateVolume", alloc).error_message() == "Volume Id 3 already exists!");

  volume_server_pb::VolumeStatusRequest st;
  st.set_volume_id(3);
  REQUIRE(call("VolumeStatus", st).ok());
  volume_server_pb::VolumeStatusResponse status;
  REQUIRE(status.ParseFromString(out));
  CHECK(status.volume_size() == 8);
  CHECK_FALSE(status.is_read_only());

  CHECK(admin.Handle("NoSuchMethod", "", &out).error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(admin.Handle("VolumeStatus", std::string("\xff\xff\xff", 3), &out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);

  volume_server_pb::VolumeDeleteRequest del;
  del.set_volume_id(3);
  CHECK(call("VolumeDelete", del).ok());
  CHECK(removed == 1);
  CHECK_FALSE(fs::exists(d.path / "ok_3.dat"));
  const grpc::Status again = call("VolumeDelete", del);
  CHECK(again.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(again.error_message() == "delete volume 3 not found on disk: volume not found");
}

TEST_CASE("a push is finished only under a path the supervisor opened for it: a gRPC worker cannot make it remove another file") {
  testing::TempDir d;
  Store store({{d.path.string(), d.path.string(), 8, "", "", 8}}, 4);
  REQUIRE(store.LoadAll().ok());
  const ServerConfig cfg = TestConfig();
  AdminHooks hooks;
  hooks.volumes_changed = [] {};
  AdminService admin(&store, &cfg, hooks);
  std::string in, out;
  const fs::path victim = d.path / "keep.me";
  std::ofstream(victim) << "x";
  kelp_internal::ReceiveFileFinish finish;
  finish.set_path(victim.string());
  finish.set_failed(true);
  finish.SerializeToString(&in);
  CHECK(admin.Handle("kelp.FinishReceivedFile", in, &out).error_message() == "no file " + victim.string() + " is being received");
  CHECK(fs::exists(victim));

  kelp_internal::ReceiveFileOpen open;
  open.mutable_info()->set_volume_id(77);
  open.mutable_info()->set_ext(".ec01");
  open.mutable_info()->set_is_ec_volume(true);
  open.SerializeToString(&in);
  REQUIRE(admin.Handle("kelp.OpenReceivedFile", in, &out).ok());
  kelp_internal::ReceiveFileOpened opened;
  REQUIRE(opened.ParseFromString(out));
  CHECK(opened.error().empty());
  CHECK(opened.path() == (d.path / "77.ec01").string());
  CHECK(fs::exists(d.path / "77.ec01"));
  finish.set_path(opened.path());
  finish.SerializeToString(&in);
  CHECK(admin.Handle("kelp.FinishReceivedFile", in, &out).ok());
  CHECK_FALSE(fs::exists(d.path / "77.ec01"));  // a failed push is removed
  CHECK_FALSE(admin.Handle("kelp.FinishReceivedFile", in, &out).ok());  // and finished once
}

TEST_CASE("vacuum over the admin calls: Go's texts, one vacuum at a time, no delete while compacting, and a commit that swaps") {
  testing::TempDir d;
  Store store({{d.path.string(), d.path.string(), 8, "", "", 8}}, 4);
  REQUIRE(store.LoadAll().ok());
  const ServerConfig cfg = TestConfig();
  int replaced = 0;
  AdminHooks hooks;
  hooks.volume_added = [](Volume*) {};
  hooks.volume_removed = [](VolumeId, const master_pb::VolumeShortInformationMessage&) {};
  hooks.volumes_changed = [] {};
  hooks.volume_replaced = [&](Volume*) { ++replaced; };
  AdminService admin(&store, &cfg, hooks);
  std::string out;
  auto call = [&](const char* method, const google::protobuf::Message& req) {
    std::string in;
    req.SerializeToString(&in);
    out.clear();
    return admin.Handle(method, in, &out);
  };
  volume_server_pb::VacuumVolumeCheckRequest check;
  check.set_volume_id(5);
  grpc::Status s = call("VacuumVolumeCheck", check);
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.error_message() == "volume id 5 is not found during check compact: volume not found");
  volume_server_pb::VacuumVolumeCommitRequest commit;
  commit.set_volume_id(5);
  s = call("VacuumVolumeCommit", commit);
  CHECK(s.error_message() == "commit compact volume 5: volume id 5 is not found during commit compact: volume not found");

  volume_server_pb::AllocateVolumeRequest alloc;
  alloc.set_volume_id(5);
  alloc.set_version(3);
  REQUIRE(call("AllocateVolume", alloc).ok());
  Volume* v = store.Find(5);
  REQUIRE(v);
  for (NeedleId id = 1; id <= 4; ++id) {
    std::string rec = testing::NeedleRecord(id, 7, std::string(100, 'x'));
    REQUIRE(v->Append(reinterpret_cast<uint8_t*>(rec.data()), rec.size()).ok());
  }
  REQUIRE(v->Delete(2, 7).ok());
  REQUIRE(call("VacuumVolumeCheck", check).ok());
  volume_server_pb::VacuumVolumeCheckResponse ratio;
  REQUIRE(ratio.ParseFromString(out));
  CHECK(ratio.garbage_ratio() == doctest::Approx(0.25));

  // While a vacuum holds the volume: a second compact and a commit do nothing, a delete is refused.
  REQUIRE(v->TryBeginCompaction());
  volume_server_pb::VacuumVolumeCompactRequest compact;
  compact.set_volume_id(5);
  CHECK(call("VacuumVolumeCompact", compact).ok());
  CHECK_FALSE(fs::exists(d.path / "5.cpd"));
  CHECK(call("VacuumVolumeCommit", commit).ok());
  CHECK(replaced == 0);
  volume_server_pb::VolumeDeleteRequest del;
  del.set_volume_id(5);
  CHECK(call("VolumeDelete", del).error_message() == "volume 5 is compacting");
  CHECK(store.Find(5) == v);
  v->EndCompaction();

  REQUIRE(call("VacuumVolumeCompact", compact).ok());
  CHECK(fs::exists(d.path / "5.cpd"));
  REQUIRE(call("VacuumVolumeCommit", commit).ok());
  volume_server_pb::VacuumVolumeCommitResponse committed;
  REQUIRE(committed.ParseFromString(out));
  CHECK(replaced == 1);
  Volume* next = store.Find(5);
  REQUIRE(next);
  CHECK(next != v);
  CHECK(next->super_block().compaction_revision == 1);
  CHECK(committed.volume_size() == next->dat_size());
  CHECK_FALSE(committed.is_read_only());
  CHECK_FALSE(next->Lookup(2).has_value());
  CHECK(next->Lookup(3).has_value());
  REQUIRE(call("VacuumVolumeCheck", check).ok());
  REQUIRE(ratio.ParseFromString(out));
  CHECK(ratio.garbage_ratio() == 0);
  volume_server_pb::VacuumVolumeCleanupRequest cleanup;
  cleanup.set_volume_id(5);
  CHECK(call("VacuumVolumeCleanup", cleanup).ok());
}

TEST_CASE("a volume being created counts in its location; a busy id is neither allocated nor mounted; delete is two steps") {
  testing::TempDir d1, d2;
  Store store({{d1.path.string(), d1.path.string(), 2, "", "", 2}, {d2.path.string(), d2.path.string(), 2, "", "", 2}}, 4);
  REQUIRE(store.LoadAll().ok());
  NewVolumeSpec spec;
  spec.id = 1;
  // An empty server: the tie goes to the first location.
  REQUIRE(store.PickLocation(spec).value() == 0);
  store.BeginBusy(1, 0, true);
  CHECK(store.PickLocation(spec).value() == 1);
  CHECK(store.AddVolume(spec).status().message() == "Volume Id 1 already exists!");
  auto created = store.CreateFiles(store.NamesIn(0, "", 1), spec);
  REQUIRE(created.ok());
  CHECK(store.Locate(1).status().code() == Code::kUnavailable);
  store.EndBusy(1);
  REQUIRE(store.Locate(1).ok());
  CHECK(store.Locate(1).value().location == 0);
  bool adopted = false;
  store.Adopt(std::move(created.value()), 0, &adopted);
  CHECK(adopted);
  CHECK(store.VolumeCountIn(0) == 1);
  // A busy entry that will not be mounted (a delete) does not count.
  store.BeginBusy(2, 1, false);
  CHECK(store.VolumeCountIn(1) == 0);
  store.EndBusy(2);

  // Location 0 holds one and creates one: full at 2.
  spec.id = 3;
  store.BeginBusy(3, 0, true);
  CHECK(store.PickLocation(spec).value() == 1);
  store.BeginBusy(4, 1, true);
  store.BeginBusy(5, 1, true);
  CHECK(store.PickLocation(spec).status().message() == "No more free space left");
  for (VolumeId id : {3, 4, 5}) store.EndBusy(id);

  const fs::path dat = d1.path / "1.dat";
  REQUIRE(fs::exists(dat));
  CHECK(store.BeginDelete(9, false).status().code() == Code::kNotFound);
  auto removal = store.BeginDelete(1, false);
  REQUIRE(removal.ok());
  CHECK(store.Find(1) == nullptr);
  CHECK(store.Busy(1));
  CHECK(fs::exists(dat));  // until RemoveFiles, which the writer thread runs
  store.RemoveFiles(std::move(removal.value()));
  CHECK_FALSE(fs::exists(dat));
  CHECK_FALSE(fs::exists(d1.path / "1.idx"));
  store.EndBusy(1);
  CHECK_FALSE(store.Busy(1));
}
