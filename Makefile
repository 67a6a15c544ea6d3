# The sidecar's build. One archive per module (conf, cache, upstream, proxy) so the binary and the
# tests link the same objects; everything lands under $(BUILD). `make asan` builds the same tree
# with AddressSanitizer + UBSan under build/asan.
#
#   make run          install what building needs, build, start on sidecar.ini
#   make test         install test tools, run unit tests (plain + ASan/UBSan), the fuzz corpora,
#                     integration tests (plain, ASan/UBSan, valgrind) and a TEST_SOAK_SECONDS soak
#   make fuzz         build the libFuzzer targets (clang, ASan+UBSan, build/fuzz) and run each for
#                     FUZZ_SECONDS (default 60); new inputs go to build/fuzz/corpus/<target>
#   make fuzz-regress replay each committed corpus (tests/fuzz/corpus/<target>) once under
#                     ASan+UBSan: libFuzzer binaries when clang has libFuzzer, else a gcc replay main
#   make integration-valgrind  the differential scripts and the near-cache suite with the
#                     sidecar under valgrind memcheck (any error or leak fails)
#   make soak         SOAK_SECONDS (default 120) of mixed load, client kills and upstream restarts
#                     against the ASan build, checked against a model (tests/soak/)
#   make deps         install every Debian package the project uses (idempotent, quiet)
#   make check-deps   fail if a layer includes what it must not
#   make bench        redis-benchmark against redis-server, twemproxy and the sidecar

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -D_GNU_SOURCE -I. $(SAN)
PKGS     = hiredis inih
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lhiredis -linih)
LDLIBS   = $(PKG_LIBS) -lev -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)
CONFIG  ?= sidecar.ini

MODULES := conf cache upstream proxy
# Link order: dependents first.
LINK_MODULES := proxy upstream cache conf
srcs_of = $(filter-out proxy/main.c,$(wildcard $(1)/*.c))
objs_of = $(patsubst %.c,$(BUILD)/%.o,$(call srcs_of,$(1)))
ARCHIVES := $(foreach m,$(LINK_MODULES),$(if $(call srcs_of,$(m)),$(BUILD)/lib$(m).a))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))

.PHONY: all run test unit integration deps deps-run deps-test asan asan-unit check-deps clean bench bench-quick deploy-check \
        fuzz fuzz-build fuzz-bins fuzz-regress fuzz-regress-libfuzzer fuzz-regress-replay \
        integration-valgrind soak
.DEFAULT_GOAL := all

all: sidecar

sidecar: $(BUILD)/sidecar
	@if [ "$(BUILD)" = build ]; then cp $< $@.tmp && mv -f $@.tmp $@; fi

$(BUILD)/sidecar: $(BUILD)/proxy/main.o $(ARCHIVES)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

define archive_rule
$(BUILD)/lib$(1).a: $(call objs_of,$(1))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call archive_rule,$(m))))

$(BUILD)/tests/%: tests/unit/%.c $(patsubst %.c,$(BUILD)/%.o,$(UNIT_HELPERS)) $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

unit-bins: $(UNIT_BINS)

# Fuzz targets (tests/fuzz/fuzz_*.c), never part of `all`. Each is linked either with libFuzzer
# (FUZZ_LINK=-fsanitize=fuzzer, clang) or with tests/fuzz/replay_main.c (FUZZ_MAIN, any compiler).
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzzers/%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
FUZZ_MAIN ?=
FUZZ_LINK ?=
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_CLANG := $(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT=-O1 FUZZ_LINK=-fsanitize=fuzzer \
  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# True when clang can link a libFuzzer binary (clang plus libclang-rt-dev).
FUZZ_PROBE := mkdir -p build/fuzz && printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' \
  | clang -fsanitize=fuzzer -x c - -o build/fuzz/probe >/dev/null 2>&1

$(BUILD)/fuzzers/%: tests/fuzz/%.c $(FUZZ_MAIN) $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(FUZZ_LINK) -MMD -MP -o $@ $(filter %.c %.a,$^) $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

deps-run:
	@sh deploy/install-deps.sh run
deps-test:
	@sh deploy/install-deps.sh test
deps: deps-test

run: deps-run
	@$(MAKE) --no-print-directory all
	./sidecar -c $(CONFIG)

# Unit suites, each a Check binary; CK_FORK=no keeps sanitizer reports in the test's own process.
unit: unit-bins
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_VERBOSITY=minimal $$t; done

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(SAN_FLAGS)" build/asan/sidecar unit-bins

asan-unit: asan
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(SAN_FLAGS)" unit

fuzz-build:
	+@$(FUZZ_CLANG) fuzz-bins

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p build/fuzz/corpus/$$t; \
	  build/fuzz/fuzzers/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus/$$t tests/fuzz/corpus/$$t; done

# -runs=0: execute every corpus input once, then stop (no mutation).
fuzz-regress-libfuzzer: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do echo "== fuzz-regress $$t"; \
	  build/fuzz/fuzzers/$$t -runs=0 tests/fuzz/corpus/$$t; done

# The same corpora through tests/fuzz/replay_main.c, built by gcc in the ASan tree (build/asan).
fuzz-regress-replay:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(SAN_FLAGS)" \
	  FUZZ_MAIN=tests/fuzz/replay_main.c fuzz-bins
	@set -e; for t in $(FUZZ_TARGETS); do echo "== fuzz-regress (replay) $$t"; \
	  build/asan/fuzzers/$$t tests/fuzz/corpus/$$t; done

fuzz-regress:
	@if $(FUZZ_PROBE); then $(MAKE) --no-print-directory fuzz-regress-libfuzzer; \
	else echo "fuzz-regress: clang cannot link libFuzzer here; replaying with $(CC)"; \
	  $(MAKE) --no-print-directory fuzz-regress-replay; fi

integration: all
	@sh tests/integration/run.sh ./sidecar

# Builds use every core (JOBS); the tests themselves run one after another (each suite's loop is
# one recipe).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
TEST_SOAK_SECONDS ?= 60

test: deps-test
	@$(MAKE) --no-print-directory check-deps
	@$(MAKE) --no-print-directory -j$(JOBS) all unit
	@$(MAKE) --no-print-directory -j$(JOBS) asan-unit
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-regress
	@$(MAKE) --no-print-directory integration
	@SIDECAR_ASAN=1 sh tests/integration/run.sh build/asan/sidecar
	@$(MAKE) --no-print-directory integration-valgrind
	@SOAK_SECONDS=$(TEST_SOAK_SECONDS) sh tests/soak/run.sh build/asan/sidecar
	@$(MAKE) --no-print-directory deploy-check
	@echo "make test: all passed"

# The sidecar under valgrind memcheck (tests/integration/run.sh, SIDECAR_VALGRIND=1).
integration-valgrind: all
	@SIDECAR_VALGRIND=1 sh tests/integration/run.sh ./sidecar

soak: asan
	@sh tests/soak/run.sh build/asan/sidecar

# Validates deploy/ (Dockerfile, Kubernetes manifests, systemd unit) against sidecar.ini and the binary.
deploy-check: all
	@/usr/bin/python3 tests/deploy/test_deploy.py ./sidecar

check-deps:
	@sh tests/check-deps.sh

bench: all
	@sh deploy/install-deps.sh bench
	@sh tests/bench/run.sh ./sidecar

bench-quick: all
	@sh deploy/install-deps.sh bench
	@ROUNDS=1 QUICK=1 sh tests/bench/run.sh ./sidecar

clean:
	rm -rf build sidecar

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
