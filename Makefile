# amiforge — plain GNU make. `make help` lists the targets.

CC       ?= cc
CLANG    ?= clang
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share
MANDIR   ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions

PKGS := libvirt libguestfs libcurl openssl libarchive yaml-0.1 jansson libxml-2.0 libdeflate sqlite3

CFLAGS   ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 \
            -Wno-format-nonliteral -Wno-format-truncation -Wmissing-prototypes -Wstrict-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -I. -Icommon -fno-strict-aliasing
# SAN is set by check-asan; the agent is never built with it (it is static).
SAN      ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

HOST_CFLAGS  := $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(SAN) -DAMIFORGE_DATADIR='"$(DATADIR)"'
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

# The agent for each guest architecture (drivers/hypervisor/arch.c): the
# host's own with $(CC) ($(AGENT), which the tests also run), the other one
# with Debian's cross compiler ($(ARCH)-linux-gnu-gcc: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, libssl-dev:arm64; `make deps`). Both are embedded.
# A missing cross compiler stops the build with a message saying so; a build
# without the other agent is asked for explicitly: make AGENT_ARCHES=x86_64
# (that amiforge then refuses to boot aarch64 guests, saying why).
HOST_ARCH   := $(shell uname -m)
AGENT_ARCHES ?= x86_64 aarch64
CROSS_ARCH  := $(filter-out $(HOST_ARCH),x86_64 aarch64)
CROSS_CC    ?= $(CROSS_ARCH)-linux-gnu-gcc
CROSS_AGENT := $(BUILD)/agent-$(CROSS_ARCH)/amiforge-agent
CROSS_OBJ   := $(patsubst %.c,$(BUILD)/agent-$(CROSS_ARCH)/%.o,$(COMMON_SRC) $(AGENT_SRC))
NO_AGENT    := $(BUILD)/agent-none
# The blob's file for an architecture: its agent, or the empty file.
agent_for = $(if $(filter $(1),$(AGENT_ARCHES)),$(if $(filter $(1),$(HOST_ARCH)),$(AGENT),$(CROSS_AGENT)),$(NO_AGENT))

.PHONY: all deps check check-guests check-catalog check-scale check-arm64 check-unit check-asan check-valgrind fuzz install uninstall clean bench help demo
.DELETE_ON_ERROR:

all: amiforge amiforge-agent $(if $(filter $(CROSS_ARCH),$(AGENT_ARCHES)),amiforge-agent-$(CROSS_ARCH))

help:
	@echo 'make              build ./amiforge and ./amiforge-agent'
	@echo 'make deps         install the Debian packages the project needs'
	@echo 'make demo         build the Debian base image, then amiforge build recipes/demo.yaml'
	@echo 'make check        all tests (unit, sigv4, protocol, guests, moto)'
	@echo 'make check-guests the slower guest tests (CI runs them after make check)'
	@echo 'make check-catalog the catalog components in real guests (CI runs it too)'
	@echo 'make check-scale   build --jobs and a build on a remote libvirt host (ssh)'
	@echo 'make check-arm64   aarch64 guests under TCG: run (both drivers), a build, publish'
	@echo 'make check-unit   the quick tests only (no guest, no services)'
	@echo 'make check-asan   unit tests + ASAN_SCRIPTS under ASan+UBSan (build in build-asan/)'
	@echo 'make check-valgrind  the unit tests under valgrind memcheck'
	@echo 'make fuzz         run every libFuzzer target FUZZ_SECONDS (60) each (clang)'
	@echo 'make fuzz-replay  replay every fuzz corpus once (part of make check)'
	@echo 'make bench        benchmarks against the peers; prints a table'
	@echo 'make man          the manual page, build/amiforge.1 (from the help texts)'
	@echo 'make install      PREFIX=/usr/local DESTDIR= (amiforge, its man page, bash completion)'

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

$(BUILD)/host/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(HOST_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/agent/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(call say,CC [agent],$<)
	$(Q)$(CC) $(AGENT_CFLAGS) -MMD -MP -c -o $@ $<

$(AGENT): $(AGENT_OBJ)
	$(CC) $(AGENT_CFLAGS) $(AGENT_LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

amiforge-agent: $(AGENT)
	rm -f $@ && cp $< $@

$(BUILD)/agent-$(CROSS_ARCH)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@command -v $(CROSS_CC) >/dev/null || { echo "make: $(CROSS_CC) not found: the $(CROSS_ARCH) guest agent needs Debian's cross compiler (make deps installs it), or build without it: make AGENT_ARCHES=$(HOST_ARCH)" >&2; exit 1; }
	$(call say,CC [agent $(CROSS_ARCH)],$<)
	$(Q)$(CROSS_CC) $(AGENT_CFLAGS) -MMD -MP -c -o $@ $<

$(CROSS_AGENT): $(CROSS_OBJ)
	$(CROSS_CC) $(AGENT_CFLAGS) $(AGENT_LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

# The agent of the other architecture, beside amiforge-agent (tests run it
# under qemu-user: tests/integration/agent-cross.sh).
amiforge-agent-$(CROSS_ARCH): $(CROSS_AGENT)
	rm -f $@ && cp $< $@

$(NO_AGENT):
	@mkdir -p $(dir $@)
	: > $@

# The agents travel inside the host binary (written to the seed ISO at boot).
AGENT_BLOBS := $(sort $(call agent_for,x86_64) $(call agent_for,aarch64))
$(BUILD)/host/agent-blob.o: builder/guest/agent-blob.S $(AGENT_BLOBS) Makefile
	@mkdir -p $(dir $@)
	$(CC) -c -DAGENT_X86_64_PATH='"$(call agent_for,x86_64)"' \
		-DAGENT_AARCH64_PATH='"$(call agent_for,aarch64)"' -o $@ $<

$(HOSTLIB): $(HOST_OBJ) $(BUILD)/host/agent-blob.o
	@rm -f $@
	ar rcs $@ $^

# Objects, not the archive: every command is linked in.
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

# Fuzz targets (libFuzzer + ASan + UBSan, clang). tests/fuzz/fuzz-agent-*.c
# exercise the guest agent and link its objects (main renamed); every other
# fuzz-*.c links the host library, built again with clang and coverage.
# `make fuzz` runs each target for FUZZ_SECONDS (one line per target);
# `make fuzz-replay` replays every seed corpus once (tests/fuzz/corpus/<target>/).
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := $(BASE_CFLAGS) -Wno-unknown-warning-option $(PKG_CFLAGS) -g -O1 \
	-fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
FUZZ_HOST_OBJ  := $(patsubst %.c,$(BUILD)/fuzzobj/host/%.o,$(COMMON_SRC) $(HOST_SRC))
FUZZ_AGENT_OBJ := $(patsubst %.c,$(BUILD)/fuzzobj/agent/%.o,$(COMMON_SRC) $(AGENT_SRC))
FUZZ_HOSTLIB   := $(BUILD)/fuzzobj/libamiforge.a
FUZZ_AGENT_BIN := $(filter $(BUILD)/fuzz/fuzz-agent-%,$(FUZZ_BIN))
FUZZ_HOST_BIN  := $(filter-out $(FUZZ_AGENT_BIN),$(FUZZ_BIN))

$(BUILD)/fuzzobj/host/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(call say,CC [fuzz],$<)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzzobj/agent/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(call say,CC [fuzz agent],$<)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -DAMIFORGE_AGENT -Dmain=amiforge_agent_main -Wno-missing-prototypes -c -o $@ $<

$(FUZZ_HOSTLIB): $(FUZZ_HOST_OBJ) $(BUILD)/host/agent-blob.o
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_HOST_BIN): $(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_HOSTLIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_HOSTLIB) $(HOST_LDLIBS)

$(FUZZ_AGENT_BIN): $(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_AGENT_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -DAMIFORGE_AGENT -fsanitize=fuzzer -o $@ $< $(FUZZ_AGENT_OBJ) \
		-lcrypto -lpthread

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(BUILD)

fuzz-replay: fuzz-build
	tests/fuzz/run.sh replay 0 $(BUILD)
.PHONY: fuzz-build fuzz-replay

check-unit: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh unit

check: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh all

# The slower guest scripts ("# suite: guests"), kept out of make check so that
# it stays under 30 minutes here; CI runs both (.ci/run).
check-guests: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh suite guests

# The catalog's components in real guests (update-linux, STIG, reboot tests).
check-catalog: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh suite catalog

# Scale-out in real guests: three builds at once (build-jobs.sh) and a build
# on a remote libvirt host through an sshd the test starts (remote-libvirt.sh).
# About 25 min here; not in .ci/run until build-jobs.sh's SIGKILL part passes here.
check-scale: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh suite scale

# arm64 guests (issue 22) on the Debian 12 arm64 fixture, under TCG on an
# x86 host: run with each driver, a small build, its publish in moto
# (tests/integration/arm64-guests.sh). Too slow for make check; what needs
# no arm64 guest (the cross agent under qemu-user, libvirt's view of the
# aarch64 domain, inspect/SBOM/publish of an arm64 disk) is arm64-disk.sh,
# part of make check.
check-arm64: all unit-tests
	BUILD=$(BUILD) tests/run-tests.sh suite arm64

# check-asan: the unit tests (test-agent-fake: the fake-agent tests) and these
# integration scripts, under ASan + UBSan: one of each kind — a guest
# (boot-agent: both drivers), libguestfs (inspect), moto (aws-creds, pipeline.sh:
# the pipelines' error paths found a leak there) — and the
# CLI scripts that need neither. Not every script: each guest boot costs
# minutes under ASan. `make check-asan ASAN_SCRIPTS="build convert"` runs others.
ASAN_SCRIPTS ?= run-cli aws-sigv4-cli aws-creds boot-agent inspect pipeline.sh
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

check-asan:
	$(MAKE) BUILD=build-asan SAN='$(ASAN_FLAGS)' build-asan/amiforge unit-tests
	BUILD=build-asan AMIFORGE=build-asan/amiforge \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:suppressions=$(CURDIR)/tests/lib/asan.supp \
		LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lib/lsan.supp:print_suppressions=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		tests/run-tests.sh all "$(ASAN_SCRIPTS)"

# The unit tests under valgrind memcheck (not part of check): any error or
# definite/possible leak fails. Logs in $(BUILD)/valgrind/.
check-valgrind: all unit-tests
	BUILD=$(BUILD) tests/lib/valgrind-unit.sh $(UNIT_BIN)

# The README's first command: a real build of the demo recipe on the Debian
# base image built from Debian's packages (cached after the first time).
demo: all
	./amiforge build recipes/demo.yaml --var parent="$$(tests/fixtures/build-debian-image.sh)"

bench: all
	bench/run

# The manual page is written from the program's own help texts.
$(BUILD)/amiforge.1: $(BUILD)/amiforge doc/mkman.py
	doc/mkman.py $(BUILD)/amiforge > $@

man: $(BUILD)/amiforge.1
.PHONY: man

# The agent travels inside amiforge: one binary to install.
install: all $(BUILD)/amiforge.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 amiforge $(DESTDIR)$(BINDIR)/amiforge
	install -m 0644 $(BUILD)/amiforge.1 $(DESTDIR)$(MANDIR)/man1/amiforge.1
	install -m 0644 doc/amiforge.bash $(DESTDIR)$(BASHCOMPDIR)/amiforge
	install -m 0644 doc/_amiforge $(DESTDIR)$(ZSHCOMPDIR)/_amiforge
	for f in $$(cd catalog && find . -name '*.yaml'); do \
		install -D -m 0644 "catalog/$$f" "$(DESTDIR)$(DATADIR)/amiforge/components/$$f" || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/amiforge $(DESTDIR)$(MANDIR)/man1/amiforge.1 \
		$(DESTDIR)$(BASHCOMPDIR)/amiforge $(DESTDIR)$(ZSHCOMPDIR)/_amiforge
	rm -rf $(DESTDIR)$(DATADIR)/amiforge/components

# Header dependencies, written by -MMD -MP beside each object.
-include $(HOST_OBJ:.o=.d) $(AGENT_OBJ:.o=.d) $(CROSS_OBJ:.o=.d) $(BUILD)/host/builder/cli/main.d

clean:
	rm -rf build build-asan amiforge amiforge-agent amiforge-agent-x86_64 amiforge-agent-aarch64
