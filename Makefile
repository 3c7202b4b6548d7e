# landjail — build, test, benchmark, install.  See README.md.
#   make            build everything under build/
#   make test       unit, CLI, proxy integration and jail e2e tests (the CI command)
#   make bench      benchmarks (figures are ratios against a baseline from the same run)
#   make asan       the unit tests under AddressSanitizer + UBSan (build/asan/)
#   make install    install under $(DESTDIR)$(PREFIX)
#   make install-boundary   also install landjail as `boundary` and `agent-firewall` (copies)

PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=
VERSION := 0.1.0

ifeq ($(SAN),)
BUILD   := build
SANFLAGS :=
else ifeq ($(SAN),asan)
BUILD   := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),tsan)
BUILD   := build/tsan
SANFLAGS := -fsanitize=thread
else
$(error SAN must be empty, asan or tsan)
endif

CXX ?= g++
CC  ?= gcc

WARN_CXX := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor \
            -Wold-style-cast -Wcast-qual -Wformat=2 -Wimplicit-fallthrough -Wduplicated-cond \
            -Wlogical-op -Wuseless-cast
WARN_C   := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2
# -Werror in CI (CI=true) and with WERROR=1; a local build reports warnings without failing.
ifneq ($(filter true 1,$(CI) $(WERROR)),)
WARN_CXX += -Werror
WARN_C   += -Werror
endif
HARDEN   := -D_FORTIFY_SOURCE=2 -D_GLIBCXX_ASSERTIONS -fstack-protector-strong -fPIE
OPT      ?= -O2 -g

CPPFLAGS += -I. -MMD -MP -DLJ_VERSION='"$(VERSION)"' \
            -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION \
            -DBOOST_ASIO_NO_DEPRECATED -DBOOST_BEAST_USE_STD_STRING_VIEW -DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL
CXXFLAGS := -std=c++20 $(OPT) $(WARN_CXX) $(HARDEN) $(SANFLAGS) $(EXTRA_CXXFLAGS)
CFLAGS   := -std=c11 $(OPT) $(WARN_C) $(HARDEN) $(SANFLAGS)
LDFLAGS  := -pie -Wl,-z,relro,-z,now $(SANFLAGS)

YAML_LIBS  := $(shell pkg-config --libs yaml-cpp 2>/dev/null || echo -lyaml-cpp)
CRIT_LIBS  := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)
BENCH_LIBS := -lbenchmark -lpthread
# Libraries, lowest first: policy (pure) <- base (the ground floor) <- audit <- {proxy, landjail}.
# The launcher links neither Asio nor mbedTLS (tests/cli/layers.sh checks the binaries).
AUDIT_LIBS := -lcurl -pthread
PROXY_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto -lspdlog -lfmt -pthread
JAIL_LIBS  := -lseccomp

# ---- policy: libljpolicy.a (rules, matching, config parsing; no I/O) ---------------------
POLICY_SRC := $(wildcard policy/*.cpp)
POLICY_OBJ := $(POLICY_SRC:%.cpp=$(BUILD)/obj/%.o)
POLICY_LIB := $(BUILD)/lib/libljpolicy.a

# ---- base: libljbase.a (fds, diagnostics, the option table, config discovery) ------------
BASE_SRC := $(wildcard proxy/base/*.cpp)
BASE_OBJ := $(BASE_SRC:%.cpp=$(BUILD)/obj/%.o)
BASE_LIB := $(BUILD)/lib/libljbase.a

# ---- audit: libljaudit.a (events, formats, sinks, writer, the jail's event link) ---------
AUDIT_SRC := $(wildcard proxy/audit/*.cpp)
AUDIT_OBJ := $(AUDIT_SRC:%.cpp=$(BUILD)/obj/%.o)
AUDIT_LIB := $(BUILD)/lib/libljaudit.a

# ---- proxy: libljproxy.a (tls, session, server) + landjail-proxy -------------------------
PROXY_SRC := proxy/asio_impl.cpp $(wildcard proxy/tls/*.cpp proxy/session/*.cpp proxy/server/*.cpp)
PROXY_OBJ := $(PROXY_SRC:%.cpp=$(BUILD)/obj/%.o)
PROXY_LIB := $(BUILD)/lib/libljproxy.a
PROXY_BIN := $(BUILD)/bin/landjail-proxy

# ---- landjail: libljjail.a (everything but main) + the landjail executable ---------------
JAIL_SRC     := $(filter-out landjail/main.cpp,$(wildcard landjail/*.cpp landjail/*/*.cpp))
JAIL_OBJ     := $(JAIL_SRC:%.cpp=$(BUILD)/obj/%.o)
JAIL_LIB     := $(BUILD)/lib/libljjail.a
LANDJAIL_OBJ := $(BUILD)/obj/landjail/main.o $(JAIL_OBJ)
LANDJAIL_BIN := $(BUILD)/bin/landjail

LOW_LIBS  := $(AUDIT_LIB) $(BASE_LIB) $(POLICY_LIB)
LOW_LDLIBS := $(YAML_LIBS) $(AUDIT_LIBS)

# ---- shim: liblandjail-shim.so (C11, libc only) + libljshim_core.a (pure helpers) --------
# The .so is never built with sanitizers: it is preloaded into programs that are not.
SHIM_LIB      := $(BUILD)/lib/liblandjail-shim.so
PROFILE_SRC   := $(wildcard policy/profiles/*.yaml)
PROFILES      := $(PROFILE_SRC:policy/profiles/%=$(BUILD)/share/landjail/profiles/%)
SHIM_CORE_OBJ := $(BUILD)/obj/shim/core.o
SHIM_CORE_LIB := $(BUILD)/lib/libljshim_core.a
SHIM_CFLAGS   := -std=gnu11 $(OPT) $(filter-out -Wpedantic,$(WARN_C)) -fPIC -fvisibility=hidden -D_FORTIFY_SOURCE=2 \
                 -fstack-protector-strong

$(SHIM_LIB): shim/shim.c shim/core.c shim/core.h shim/shim.map Makefile
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -I. -shared -Wl,--version-script=shim/shim.map -Wl,-z,defs,-z,now \
	    -o $@ shim/shim.c shim/core.c

$(SHIM_CORE_LIB): $(SHIM_CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# ---- tests and benchmarks ----------------------------------------------------------------
UNIT_SRC  := $(wildcard tests/unit/*.cpp)
UNIT_OBJ  := $(UNIT_SRC:%.cpp=$(BUILD)/obj/%.o)
UNIT_BIN  := $(BUILD)/tests/unit_tests
BENCH_SRC := $(wildcard tests/bench/*.cpp)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/obj/%.o)
BENCH_BIN := $(BUILD)/bench/policy_bench

ALL_OBJ := $(SHIM_CORE_OBJ) $(POLICY_OBJ) $(BASE_OBJ) $(AUDIT_OBJ) $(PROXY_OBJ) $(BUILD)/obj/proxy/main.o $(LANDJAIL_OBJ) $(UNIT_OBJ) $(BENCH_OBJ)


.PHONY: shim
.PHONY: all test test-unit test-cli test-integration bench asan tsan fuzz format check-format install install-boundary uninstall clean check
.DEFAULT_GOAL := all

all: $(LANDJAIL_BIN) $(PROXY_BIN) $(SHIM_LIB) $(PROFILES)

# The shipped profiles, copied where the binaries look for them (BIN/../share/landjail/
# profiles), so the build tree has the installed layout.
$(BUILD)/share/landjail/profiles/%.yaml: policy/profiles/%.yaml
	@mkdir -p $(@D)
	cp $< $@
shim: $(SHIM_LIB) $(SHIM_CORE_LIB)

$(BUILD)/obj/%.o: %.cpp Makefile
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(POLICY_LIB): $(POLICY_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BASE_LIB): $(BASE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(AUDIT_LIB): $(AUDIT_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(PROXY_LIB): $(PROXY_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(PROXY_BIN): $(BUILD)/obj/proxy/main.o $(PROXY_LIB) $(LOW_LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $< $(PROXY_LIB) $(LOW_LIBS) $(LOW_LDLIBS) $(PROXY_LIBS)

$(JAIL_LIB): $(JAIL_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(LANDJAIL_BIN): $(BUILD)/obj/landjail/main.o $(JAIL_LIB) $(LOW_LIBS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $< $(JAIL_LIB) $(LOW_LIBS) $(LOW_LDLIBS) $(JAIL_LIBS)

$(UNIT_BIN): $(UNIT_OBJ) $(JAIL_LIB) $(PROXY_LIB) $(LOW_LIBS) $(SHIM_CORE_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(JAIL_LIB) $(PROXY_LIB) $(LOW_LIBS) $(SHIM_CORE_LIB) $(LOW_LDLIBS) $(PROXY_LIBS) $(JAIL_LIBS) $(CRIT_LIBS)

# ---- e2e: the jail around real programs and escape attempts (tests/e2e/) -----------------
E2E_DIR  := $(BUILD)/tests/e2e
E2E_CLIENTS := $(patsubst tests/e2e/shim_clients/%.c,$(E2E_DIR)/%,$(wildcard tests/e2e/shim_clients/*.c))
E2E_BINS := $(E2E_DIR)/escape $(E2E_DIR)/escape-static $(E2E_DIR)/outer-seccomp $(E2E_CLIENTS)
E2E_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -D_GNU_SOURCE

ESCAPE_SRC := tests/e2e/escape.c tests/e2e/escape_process.c

$(E2E_DIR)/escape: $(ESCAPE_SRC) tests/e2e/escape.h Makefile
	@mkdir -p $(@D)
	$(CC) $(E2E_CFLAGS) -o $@ $(ESCAPE_SRC) -pthread

# The same attacker, static: no dynamic loader, so LD_PRELOAD cannot touch it.
$(E2E_DIR)/escape-static: $(ESCAPE_SRC) tests/e2e/escape.h Makefile
	@mkdir -p $(@D)
	$(CC) $(E2E_CFLAGS) -static -o $@ $(ESCAPE_SRC) -pthread

$(E2E_DIR)/%: tests/e2e/shim_clients/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(E2E_CFLAGS) -o $@ $< -pthread

$(E2E_DIR)/outer-seccomp: tests/e2e/outer_seccomp.c Makefile
	@mkdir -p $(@D)
	$(CC) $(E2E_CFLAGS) -o $@ $< -lseccomp

# The benchmark is built with the same flags as the product (never with sanitizers).
$(BENCH_BIN): $(BENCH_OBJ) $(POLICY_LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(BENCH_OBJ) $(POLICY_LIB) $(YAML_LIBS) $(BENCH_LIBS)

# ---- test --------------------------------------------------------------------------------
test: test-unit test-cli test-integration test-e2e

test-unit: $(UNIT_BIN)
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) $(UNIT_BIN) --jobs 2

test-cli: $(LANDJAIL_BIN) $(PROXY_BIN) $(SHIM_LIB) $(PROFILES)
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) sh tests/cli/layers.sh
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) sh tests/cli/run.sh
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) sh tests/cli/misuse.sh
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) sh tests/cli/man_check.sh
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) sh tests/cli/readme_quickstart.sh
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) sh tests/cli/boundary.sh

# Debian's python3 (not a pyenv one first on PATH) has pytest from python3-pytest.
PYTHON ?= /usr/bin/python3
test-integration: $(PROXY_BIN)
	LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) LANDJAIL_REQUIRE_PROXY=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# As root and, through setpriv, as uid 65534 (see tests/e2e/README.md).
test-e2e: $(LANDJAIL_BIN) $(PROXY_BIN) $(SHIM_LIB) $(PROFILES) $(E2E_BINS)
	LANDJAIL=$(abspath $(LANDJAIL_BIN)) LANDJAIL_PROXY=$(abspath $(PROXY_BIN)) \
	    LANDJAIL_E2E_BIN=$(abspath $(E2E_DIR)) LANDJAIL_REQUIRE_PROXY=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

asan:
	$(MAKE) SAN=asan test-unit test-cli test-integration test-e2e LANDJAIL_TEST_RSS_MIB=1024

tsan:
	$(MAKE) SAN=tsan test-unit

check:
	$(MAKE) WERROR=1 all test check-format

JAIL_BENCH_BIN := $(BUILD)/bench/connect_bench
$(JAIL_BENCH_BIN): tests/bench/jail/connect_bench.c Makefile
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -o $@ $<

bench: $(BENCH_BIN) $(PROXY_BIN) $(LANDJAIL_BIN) $(JAIL_BENCH_BIN) $(SHIM_LIB) \
       $(E2E_DIR)/threads_connect $(E2E_DIR)/http_origin
	$(BENCH_BIN) --benchmark_counters_tabular=true
	$(PYTHON) tests/bench/proxy/run.py --proxy $(abspath $(PROXY_BIN))
	$(PYTHON) tests/bench/jail/run.py --landjail $(abspath $(LANDJAIL_BIN)) \
	    --connect-bench $(abspath $(JAIL_BENCH_BIN))
	$(PYTHON) tests/bench/shim/run.py --landjail $(abspath $(LANDJAIL_BIN)) \
	    --clients $(abspath $(E2E_DIR))

# ---- fuzz: libFuzzer (clang) with ASan + UBSan -------------------------------------------
# fuzz_policy: the policy sources; fuzz_request_head: the proxy's request head handling (Beast's
# parser, framing_problem, request_from_head, the decision, rewrite_for_origin). Each runs
# FUZZ_SECONDS (the acceptance runs use FUZZ_SECONDS=600).
FUZZ_BIN      := build/fuzz/fuzz_policy
FUZZ_HEAD_BIN := build/fuzz/fuzz_request_head
FUZZ_SECONDS  ?= 60
FUZZ_FLAGS    := -std=c++20 -O1 -g -I. -fsanitize=fuzzer,address,undefined
FUZZ_HEAD_SRC := tests/fuzz/fuzz_request_head.cpp proxy/session/request_head.cpp proxy/session/http_fields.cpp \
                 proxy/asio_impl.cpp
$(FUZZ_BIN): tests/fuzz/fuzz_policy.cpp $(POLICY_SRC) $(wildcard policy/*.hpp)
	@mkdir -p $(@D) build/fuzz/corpus
	clang++ $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_policy.cpp $(POLICY_SRC) $(YAML_LIBS)

$(FUZZ_HEAD_BIN): $(FUZZ_HEAD_SRC) $(POLICY_SRC) $(wildcard policy/*.hpp proxy/*/*.hpp)
	@mkdir -p $(@D) build/fuzz/corpus-head
	clang++ $(FUZZ_FLAGS) -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION \
	    -DBOOST_ASIO_NO_DEPRECATED -DBOOST_BEAST_USE_STD_STRING_VIEW -o $@ \
	    $(FUZZ_HEAD_SRC) $(POLICY_SRC) $(YAML_LIBS) -pthread

fuzz: $(FUZZ_BIN) $(FUZZ_HEAD_BIN)
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/corpus tests/fuzz/corpus
	$(FUZZ_HEAD_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -dict=tests/fuzz/request_head.dict build/fuzz/corpus-head tests/fuzz/corpus-head

# ---- format ------------------------------------------------------------------------------
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.hpp' '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
check-format:
	clang-format --dry-run -Werror $(FORMAT_FILES)

# ---- install -----------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(LANDJAIL_BIN) $(DESTDIR)$(PREFIX)/bin/landjail
	install -m 0755 $(PROXY_BIN) $(DESTDIR)$(PREFIX)/bin/landjail-proxy
	install -d $(DESTDIR)$(PREFIX)/lib/landjail
	install -m 0644 $(SHIM_LIB) $(DESTDIR)$(PREFIX)/lib/landjail/liblandjail-shim.so
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/landjail.1 $(DESTDIR)$(PREFIX)/share/man/man1/landjail.1
	install -m 0644 man/landjail-proxy.1 $(DESTDIR)$(PREFIX)/share/man/man1/landjail-proxy.1
	install -d $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 man/landjail.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/landjail.yaml.5
	install -d $(DESTDIR)$(PREFIX)/share/landjail/profiles
	install -m 0644 policy/profiles/*.yaml $(DESTDIR)$(PREFIX)/share/landjail/profiles/

# boundary's names (coder/boundary's CLI, DESIGN §8): real copies of landjail, not symlinks
# (Coder's module installer cp's a boundary release over `boundary`, which would write through a
# symlink into landjail). BOUNDARY_BINDIR puts them elsewhere, e.g. ~/.local/bin ahead on PATH;
# a copy there finds the proxy, shim and profiles through the landjail-proxy on PATH.
BOUNDARY_NAMES  := boundary agent-firewall
BOUNDARY_BINDIR ?= $(PREFIX)/bin
install-boundary: install
	install -d $(DESTDIR)$(BOUNDARY_BINDIR)
	for n in $(BOUNDARY_NAMES); do \
	    rm -f $(DESTDIR)$(BOUNDARY_BINDIR)/$$n && \
	    install -m 0755 $(LANDJAIL_BIN) $(DESTDIR)$(BOUNDARY_BINDIR)/$$n || exit 1; \
	done

uninstall:
	for n in $(BOUNDARY_NAMES); do \
	    f=$(DESTDIR)$(BOUNDARY_BINDIR)/$$n; \
	    if [ -f "$$f" ] && cmp -s "$$f" $(DESTDIR)$(PREFIX)/bin/landjail; then rm -f "$$f"; fi; \
	done
	rm -f $(DESTDIR)$(PREFIX)/lib/landjail/liblandjail-shim.so
	-rmdir $(DESTDIR)$(PREFIX)/lib/landjail 2>/dev/null
	rm -f $(DESTDIR)$(PREFIX)/bin/landjail $(DESTDIR)$(PREFIX)/bin/landjail-proxy $(DESTDIR)$(PREFIX)/share/man/man1/landjail.1 $(DESTDIR)$(PREFIX)/share/man/man1/landjail-proxy.1
	rm -f $(DESTDIR)$(PREFIX)/share/man/man5/landjail.yaml.5
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/landjail/profiles/,$(notdir $(wildcard policy/profiles/*.yaml)))
	-rmdir $(DESTDIR)$(PREFIX)/share/landjail/profiles 2>/dev/null
	-rmdir $(DESTDIR)$(PREFIX)/share/landjail 2>/dev/null

clean:
	rm -rf build

-include $(ALL_OBJ:.o=.d)
