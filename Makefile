# amiforge — plain GNU make. `make help` lists the targets.

CC       ?= cc
CLANG    ?= clang
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/amiforge

PKGS := libvirt libguestfs libcurl openssl libarchive yaml-0.1 jansson libxml-2.0

CFLAGS   ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 \
            -Wno-format-nonliteral -Wno-format-truncation -Wmissing-prototypes -Wstrict-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -I. -Icommon -fno-strict-aliasing
# SAN is set by check-asan; the agent is never built with it (it is static).
SAN      ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

HOST_CFLAGS  := $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(SAN)
HOST_LDLIBS  := $(PKG_LIBS) -lpthread -lm
AGENT_CFLAGS := $(BASE_CFLAGS) -DAMIFORGE_AGENT -Os -g0 -ffunction-sections -fdata-sections
AGENT_LDFLAGS := -static -Wl,--gc-sections -s
AGENT_LDLIBS := -lcrypto -lpthread

COMMON_SRC := $(sort $(wildcard common/*.c))
HOST_SRC   := $(sort $(filter-out builder/cli/main.c,$(wildcard builder/*/*.c drivers/*/*.c)))
AGENT_SRC  := $(sort $(wildcard guest-agent/*.c))
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz-*.c))
HEADERS    := $(wildcard common/*.h builder/*/*.h drivers/*/*.h guest-agent/*.h tests/unit/*.h)

HOST_OBJ   := $(patsubst %.c,$(BUILD)/host/%.o,$(COMMON_SRC) $(HOST_SRC))
AGENT_OBJ  := $(patsubst %.c,$(BUILD)/agent/%.o,$(COMMON_SRC) $(AGENT_SRC))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

AGENT    := $(BUILD)/amiforge-agent
HOSTLIB  := $(BUILD)/libamiforge.a

.PHONY: all deps check check-unit check-asan fuzz install uninstall clean bench help demo
.DELETE_ON_ERROR:

all: amiforge amiforge-agent

help:
	@echo 'make              build ./amiforge and ./amiforge-agent'
	@echo 'make deps         install the Debian packages the project needs'
	@echo 'make demo         build the Debian base image, then amiforge build recipes/demo.yaml'
	@echo 'make check        all tests (unit, sigv4, protocol, guests, moto)'
	@echo 'make check-unit   the quick tests only (no guest, no services)'
	@echo 'make check-asan   the tests under ASan+UBSan (build in build-asan/)'
	@echo 'make fuzz         build the libFuzzer targets (clang)'
	@echo 'make bench        benchmarks against the peers; prints a table'
	@echo 'make install      PREFIX=/usr/local DESTDIR='

deps:
	tests/lib/install-deps.sh

# `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @echo '  $(1) $(2)'
endif

$(BUILD)/host/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(HOST_CFLAGS) -c -o $@ $<

$(BUILD)/agent/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(call say,CC [agent],$<)
	$(Q)$(CC) $(AGENT_CFLAGS) -c -o $@ $<

$(AGENT): $(AGENT_OBJ)
	$(CC) $(AGENT_CFLAGS) $(AGENT_LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

amiforge-agent: $(AGENT)
	rm -f $@ && cp $< $@

# The agent travels inside the host binary (written to the seed ISO at boot).
$(BUILD)/host/agent-blob.o: builder/guest/agent-blob.S $(AGENT)
	@mkdir -p $(dir $@)
	$(CC) -c -DAGENT_PATH='"$(AGENT)"' -o $@ $<

$(HOSTLIB): $(HOST_OBJ) $(BUILD)/host/agent-blob.o
	@rm -f $@
	ar rcs $@ $^

# Objects, not the archive: commands are weak symbols, which would not pull
# archive members in.
$(BUILD)/amiforge: $(BUILD)/host/builder/cli/main.o $(HOST_OBJ) $(BUILD)/host/agent-blob.o
	$(CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LDLIBS)

amiforge: $(BUILD)/amiforge
	rm -f $@ && cp $< $@

$(BUILD)/tests/%: tests/unit/%.c $(HOSTLIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(call say,TEST,$@)
	$(Q)$(CC) $(HOST_CFLAGS) -Itests/unit -o $@ $< $(HOSTLIB) $(HOST_LDLIBS)

unit-tests: $(UNIT_BIN)
.PHONY: unit-tests

# The host-side code the fuzz targets exercise: the agent protocol, UpdateOS's output readers.
FUZZ_HOST_SRC := $(filter builder/guest/agent-client.c builder/exec/executor-agent.c builder/exec/executor.c builder/component/pkgparse.c,$(HOST_SRC))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(FUZZ_HOST_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BASE_CFLAGS) -Wno-unknown-warning-option $(PKG_CFLAGS) -g -O1 \
		-fsanitize=fuzzer,address,undefined \
		-o $@ $< $(COMMON_SRC) $(FUZZ_HOST_SRC) $(HOST_LDLIBS)

fuzz: $(FUZZ_BIN)

check-unit: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh unit

check: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh all

check-asan:
	$(MAKE) BUILD=build-asan SAN='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
		build-asan/amiforge unit-tests
	BUILD=build-asan AMIFORGE=build-asan/amiforge \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		tests/run-tests.sh all

# The README's first command: a real build of the demo recipe on the Debian
# base image built from Debian's packages (cached after the first time).
demo: all
	./amiforge build recipes/demo.yaml --var parent="$$(tests/fixtures/build-debian-image.sh)"

bench: all
	bench/run

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 amiforge $(DESTDIR)$(BINDIR)/amiforge
	install -m 0755 amiforge-agent $(DESTDIR)$(LIBEXECDIR)/amiforge-agent

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/amiforge $(DESTDIR)$(LIBEXECDIR)/amiforge-agent

clean:
	rm -rf build build-asan amiforge amiforge-agent
