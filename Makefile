# kelp build. `make` builds build/bin/kelp-volume and its workers;
# `make test` installs dependencies, builds a sanitizer build and runs every test.
#
# Options:
#   OFFSET_BYTES=4|5  .idx offset width (5 = Go's "large_disk" build, 8000GB volumes)
#   SANITIZE=1        ASan + UBSan
#   FAULTS=1          the supervisor arms storage faults from $KELP_FAULTS (test builds only)
#   BUILD=dir         output directory

OFFSET_BYTES ?= 4
BUILD ?= build
SANITIZE ?= 0
FAULTS ?= 0
CXX ?= g++
CC ?= gcc

LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
GEN := $(BUILD)/gen

CPPFLAGS := -I. -I$(GEN) -I$(LLHTTP_INC) -DKELP_OFFSET_BYTES=$(OFFSET_BYTES) -D_GNU_SOURCE -MMD -MP
CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS := -O2 -g
LDLIBS := -luv -lisal -lsystemd -lz -lsodium -lcrypto -lpthread
GRPC_LIBS := $(shell pkg-config --libs grpc++ protobuf 2>/dev/null)
# libvips (image transforms), only where it is used; its headers are system headers.
VIPS_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags vips 2>/dev/null))
VIPS_LIBS := $(shell pkg-config --libs vips 2>/dev/null)
# xxHash: the heartbeat's volume digest (supervisor only).
XXHASH_LIBS := -lxxhash
ifeq ($(FAULTS),1)
  CPPFLAGS += -DKELP_FAULT_INJECTION
endif
ifeq ($(SANITIZE),1)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CXXFLAGS += $(SANFLAGS) -O1
  CFLAGS += $(SANFLAGS)
  LDFLAGS += $(SANFLAGS)
endif

COMMON_SRCS := $(wildcard common/*.cc) $(wildcard ipc/*.cc)
# The writer (Volume, the I/O seam, the disk writers, compaction): only the
# supervisor and the job worker link it.
STORAGE_SRCS := $(wildcard storage/*.cc)
SUPERVISOR_SRCS := $(filter-out supervisor/main.cc,$(wildcard supervisor/*.cc))
HTTP_SRCS := $(filter-out worker-http/main.cc,$(wildcard worker-http/*.cc))
# Erasure-coded reads: the HTTP worker's only gRPC client (the master's shard
# lookups and peers' shard reads); the fuzzers link without it.
HTTP_EC_SRCS := $(wildcard worker-http/ec/*.cc)
# Reading and deleting needles of EC volumes across servers (shard lookups,
# shard reads, Reed-Solomon over lost pieces, journaled deletes on holders):
# linked by the HTTP and gRPC workers, never by the supervisor.
EC_CLIENT_SRCS := $(wildcard common/ec_client/*.cc)
# EC file formats that are protobuf messages (the .ecsum): the supervisor
# writes them, the gRPC worker checks shards against them.
EC_FORMAT_SRCS := $(wildcard common/ec_format/*.cc)
GRPC_SRCS := $(filter-out worker-grpc/main.cc,$(wildcard worker-grpc/*.cc))
JOB_SRCS := $(filter-out worker-ec/main.cc,$(wildcard worker-ec/*.cc))
PROTOS := proto/remote.proto proto/volume_server.proto proto/master.proto proto/kelp_internal.proto
PROTO_HDRS := $(patsubst %.proto,$(GEN)/%.pb.h,$(PROTOS)) $(patsubst %.proto,$(GEN)/%.grpc.pb.h,$(PROTOS))
PROTO_OBJS := $(patsubst %.proto,$(OBJ)/gen/%.pb.o,$(PROTOS)) $(patsubst %.proto,$(OBJ)/gen/%.grpc.pb.o,$(PROTOS))
UNIT_SRCS := $(wildcard tests/unit/*.cc)
LLHTTP_OBJS := $(OBJ)/llhttp/llhttp.o $(OBJ)/llhttp/api.o $(OBJ)/llhttp/http.o

objs = $(patsubst %.cc,$(OBJ)/%.o,$(1))

# The build id (ipc/build_id.h): a digest of every source and the build options,
# rewritten only when it changes so that an unchanged tree does not relink.
BUILD_ID := $(shell { cat $(sort $(wildcard common/*.* common/*/* ipc/* storage/* supervisor/* worker-http/*.* worker-http/*/* worker-grpc/* worker-ec/* proto/*)) Makefile; \
  echo "$(OFFSET_BYTES) $(SANITIZE) $(FAULTS)"; } | sha256sum | cut -c1-64)
ifneq ($(MAKECMDGOALS),clean)
$(shell mkdir -p $(GEN) && echo '#define KELP_BUILD_ID "$(BUILD_ID)"' > $(GEN)/build_id.gen.h.new && \
  { cmp -s $(GEN)/build_id.gen.h.new $(GEN)/build_id.gen.h && rm -f $(GEN)/build_id.gen.h.new || mv $(GEN)/build_id.gen.h.new $(GEN)/build_id.gen.h; })
endif

COMMON_OBJS := $(call objs,$(COMMON_SRCS))
STORAGE_OBJS := $(call objs,$(STORAGE_SRCS))
EC_FORMAT_OBJS := $(call objs,$(EC_FORMAT_SRCS))
SUPERVISOR_OBJS := $(call objs,$(SUPERVISOR_SRCS)) $(STORAGE_OBJS) $(EC_FORMAT_OBJS) $(PROTO_OBJS)
GRPC_OBJS := $(call objs,$(GRPC_SRCS)) $(EC_FORMAT_OBJS) $(PROTO_OBJS)
HTTP_OBJS := $(call objs,$(HTTP_SRCS)) $(LLHTTP_OBJS)
EC_CLIENT_OBJS := $(call objs,$(EC_CLIENT_SRCS))
HTTP_EC_OBJS := $(call objs,$(HTTP_EC_SRCS)) $(EC_CLIENT_OBJS) $(PROTO_OBJS)
# The job worker writes new files only, through the same I/O seam: it links the writer code.
JOB_OBJS := $(call objs,$(JOB_SRCS)) $(STORAGE_OBJS)

.PHONY: all deps run test unit system fuzz clean
# Keep fuzz objects between runs (they are intermediates of pattern rules).
.SECONDARY:
all: $(BIN)/kelp-volume $(BIN)/kelp-worker-http $(BIN)/kelp-worker-grpc $(BIN)/kelp-worker-ec

$(BIN)/kelp-volume: $(OBJ)/supervisor/main.o $(SUPERVISOR_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(GRPC_LIBS) $(XXHASH_LIBS)

$(BIN)/kelp-worker-grpc: $(OBJ)/worker-grpc/main.o $(GRPC_OBJS) $(EC_CLIENT_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(GRPC_LIBS)

$(BIN)/kelp-worker-ec: $(OBJ)/worker-ec/main.o $(JOB_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/kelp-worker-http: $(OBJ)/worker-http/main.o $(HTTP_OBJS) $(HTTP_EC_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(VIPS_LIBS) $(GRPC_LIBS)

$(BIN)/unit-tests: $(call objs,$(UNIT_SRCS)) $(SUPERVISOR_OBJS) $(HTTP_OBJS) $(OBJ)/worker-grpc/peer_guard.o $(OBJ)/worker-grpc/ec_checksum_scrub.o $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(GRPC_LIBS) $(VIPS_LIBS) $(XXHASH_LIBS)

$(OBJ)/worker-http/image_ops.o: CPPFLAGS += $(VIPS_CFLAGS)

# The codec comparison of benchmarks/ec_codec.cc (not part of `all`).
$(BIN)/ec-codec-bench: $(OBJ)/benchmarks/ec_codec.o $(OBJ)/common/rs_codec.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ -lJerasure -lgf_complete -lisal
$(OBJ)/benchmarks/ec_codec.o: CPPFLAGS += -isystem /usr/include/jerasure

# Every object may include generated headers: generate them first.
$(OBJ)/%.o: %.cc | $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

# protoc output is not ours to keep warning-free.
$(OBJ)/gen/%.o: $(GEN)/%.cc | $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(filter-out -Werror -Wall -Wextra,$(CXXFLAGS)) -w -c -o $@ $<

$(GEN)/proto/%.pb.cc $(GEN)/proto/%.pb.h $(GEN)/proto/%.grpc.pb.cc $(GEN)/proto/%.grpc.pb.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc -I. --cpp_out=$(GEN) --grpc_out=$(GEN) --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $<

# llhttp is compiled from the C sources Debian's node-llhttp ships.
$(OBJ)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) $(CFLAGS) -c -o $@ $<

# ---- fuzzing (clang libFuzzer) ----
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++20 -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wall -Wextra -Werror -Wno-missing-field-initializers
FUZZ_CPPFLAGS := -I. -I$(GEN) -I$(LLHTTP_INC) -D_GNU_SOURCE -DKELP_OFFSET_BYTES=$(OFFSET_BYTES) -MMD -MP
FUZZ_LIB_OBJS := $(patsubst %.cc,$(FUZZ_BUILD)/obj/%.o,$(COMMON_SRCS) $(HTTP_SRCS)) \
  $(FUZZ_BUILD)/obj/llhttp/llhttp.o $(FUZZ_BUILD)/obj/llhttp/api.o $(FUZZ_BUILD)/obj/llhttp/http.o

$(FUZZ_BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	clang++ $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	clang -I$(LLHTTP_INC) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	clang++ $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) $(VIPS_LIBS)

$(FUZZ_BUILD)/obj/worker-http/image_ops.o: FUZZ_CPPFLAGS += $(VIPS_CFLAGS)

FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.cc,$(FUZZ_BUILD)/fuzz-%,$(wildcard tests/fuzz/fuzz_*.cc))
FUZZ_SECONDS ?= 20
# Runs each target for FUZZ_SECONDS on a scratch corpus seeded from tests/fuzz/seeds.
fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); corpus=$(FUZZ_BUILD)/corpus-$$name; mkdir -p $$corpus; \
	  echo "== $$name ($(FUZZ_SECONDS)s)"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -artifact_prefix=$(FUZZ_BUILD)/ -print_final_stats=1 $$corpus tests/fuzz/seeds/$${name#fuzz-} \
	    > $(FUZZ_BUILD)/$$name.log 2>&1 || { tail -40 $(FUZZ_BUILD)/$$name.log; exit 1; }; \
	  grep -E "^#[0-9]+[[:space:]]+DONE" $(FUZZ_BUILD)/$$name.log || true; \
	done

# ---- workflows ----
deps:
	bash packaging/install-deps.sh

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TEST_BUILD := build/test
unit:
	$(MAKE) -j$(JOBS) BUILD=$(TEST_BUILD) SANITIZE=1 FAULTS=1 OFFSET_BYTES=5 $(TEST_BUILD)/bin/unit-tests
	$(TEST_BUILD)/bin/unit-tests

system:
	$(MAKE) -j$(JOBS) BUILD=$(TEST_BUILD) SANITIZE=1 FAULTS=1 OFFSET_BYTES=5 all
	KELP_BIN=$(TEST_BUILD)/bin .venv/bin/python -m pytest -q tests/system

# The system tests run the sanitized build; `make run` and `make all` build
# the release binaries.
test: deps
	$(MAKE) unit
	$(MAKE) -j$(JOBS) fuzz FUZZ_SECONDS=15 OFFSET_BYTES=5
	$(MAKE) system

run: deps
	$(MAKE) -j$(JOBS) all
	bash packaging/run-local.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
