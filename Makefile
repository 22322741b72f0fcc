# kelp build. `make` builds build/bin/kelp-volume and its workers;
# `make test` installs dependencies, builds a sanitizer build and runs every test.
#
# Options:
#   OFFSET_BYTES=4|5  .idx offset width (5 = Go's "large_disk" build, 8000GB volumes)
#   SANITIZE=1        ASan + UBSan
#   BUILD=dir         output directory

OFFSET_BYTES ?= 4
BUILD ?= build
SANITIZE ?= 0
CXX ?= g++
CC ?= gcc

LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

CPPFLAGS := -I. -I$(LLHTTP_INC) -DKELP_OFFSET_BYTES=$(OFFSET_BYTES) -D_GNU_SOURCE -MMD -MP
CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS := -O2 -g
LDLIBS := -luv -lisal -lsystemd -lz -lpthread
ifeq ($(SANITIZE),1)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CXXFLAGS += $(SANFLAGS) -O1
  CFLAGS += $(SANFLAGS)
  LDFLAGS += $(SANFLAGS)
endif

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

COMMON_SRCS := $(wildcard common/*.cc) $(wildcard ipc/*.cc)
SUPERVISOR_SRCS := $(filter-out supervisor/main.cc,$(wildcard supervisor/*.cc))
HTTP_SRCS := $(filter-out worker-http/main.cc,$(wildcard worker-http/*.cc))
UNIT_SRCS := $(wildcard tests/unit/*.cc)
LLHTTP_OBJS := $(OBJ)/llhttp/llhttp.o $(OBJ)/llhttp/api.o $(OBJ)/llhttp/http.o

objs = $(patsubst %.cc,$(OBJ)/%.o,$(1))

COMMON_OBJS := $(call objs,$(COMMON_SRCS))
SUPERVISOR_OBJS := $(call objs,$(SUPERVISOR_SRCS))
HTTP_OBJS := $(call objs,$(HTTP_SRCS)) $(LLHTTP_OBJS)

.PHONY: all deps run test unit system fuzz clean
# Keep fuzz objects between runs (they are intermediates of pattern rules).
.SECONDARY:
all: $(BIN)/kelp-volume $(BIN)/kelp-worker-http

$(BIN)/kelp-volume: $(OBJ)/supervisor/main.o $(SUPERVISOR_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/kelp-worker-http: $(OBJ)/worker-http/main.o $(HTTP_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/unit-tests: $(call objs,$(UNIT_SRCS)) $(SUPERVISOR_OBJS) $(HTTP_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OBJ)/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

# llhttp is compiled from the C sources Debian's node-llhttp ships.
$(OBJ)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) $(CFLAGS) -c -o $@ $<

# ---- fuzzing (clang libFuzzer) ----
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++20 -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wall -Wextra -Werror -Wno-missing-field-initializers
FUZZ_CPPFLAGS := -I. -I$(LLHTTP_INC) -D_GNU_SOURCE -DKELP_OFFSET_BYTES=$(OFFSET_BYTES) -MMD -MP
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
	clang++ $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

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
	$(MAKE) -j$(JOBS) BUILD=$(TEST_BUILD) SANITIZE=1 OFFSET_BYTES=5 $(TEST_BUILD)/bin/unit-tests
	$(TEST_BUILD)/bin/unit-tests

system:
	$(MAKE) -j$(JOBS) BUILD=$(TEST_BUILD) SANITIZE=1 OFFSET_BYTES=5 all
	KELP_BIN=$(TEST_BUILD)/bin .venv/bin/python -m pytest -q tests/system

test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) unit
	$(MAKE) -j$(JOBS) fuzz FUZZ_SECONDS=15 OFFSET_BYTES=5
	$(MAKE) system

run: deps
	$(MAKE) -j$(JOBS) all
	bash packaging/run-local.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
