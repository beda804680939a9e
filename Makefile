# crid build.  `make` builds build/bin/{crid,crid-conmon,crid-pause} and
# the plugins build/lib/crid/{crid-pull.so,crid-http.so};
# `make run` and `make test` are the two set-up commands of the README.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(PREFIX)/bin
LIBEXECDIR := $(PREFIX)/libexec/crid
# crid looks for its plugins in lib/crid beside its bin/ (common/plugin.h).
PLUGINDIR := $(PREFIX)/lib/crid
UNITDIR := $(PREFIX)/lib/systemd/system
CC ?= gcc
BUILD := build
GEN := $(BUILD)/gen
OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
PLUGIN_DIR := $(BUILD)/lib/crid

CRID_VERSION := 0.1.0
CRID_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

# GNU mode predefines the macro `linux`, which collides with the CRI
# proto's fields of that name: -Ulinux for everything.
WARNINGS := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CPPFLAGS_ALL := -D_GNU_SOURCE -Ulinux -I. -I$(GEN)
# CRID_VERSION and CRID_COMMIT, rewritten only when they change, so what
# includes it is rebuilt after every commit and nothing else is.
VERSION_H := $(GEN)/version.h
CFLAGS ?= -O2 -g
CFLAGS_ALL := -std=gnu11 $(WARNINGS) $(CFLAGS) -fno-strict-aliasing

# The daemon's libraries; the pull stack and the HTTP server bring theirs
# in their plugins, so an idle daemon does not map them.
PKGS := grpc libprotobuf-c yajl libcrypto zlib libcap libseccomp yaml-0.1
PULL_PKGS := libcurl libarchive libzstd zlib
HTTP_PKGS := libmicrohttpd gnutls
# gzip layers are inflated by ISA-L (libisal-dev) when it is there at build
# time, else by zlib.
ifeq ($(shell pkg-config --exists libisal && echo yes),yes)
PULL_PKGS += libisal
CPPFLAGS_ALL += -DHAVE_ISAL
endif
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PULL_LIBS = $(shell pkg-config --libs $(PULL_PKGS) 2>/dev/null)
HTTP_LIBS = $(shell pkg-config --libs $(HTTP_PKGS) 2>/dev/null)
# Unit tests and fuzzers link the plugins' objects in.
ALL_PKG_LIBS = $(shell pkg-config --libs $(PKGS) $(PULL_PKGS) $(HTTP_PKGS) 2>/dev/null)

COMMON_SRC := $(wildcard common/*.c)
DAEMON_SRC := $(wildcard crid/*.c crid/stream/*.c pod/*.c image/*.c netcni/*.c)
CONMON_SRC := $(wildcard conmon/*.c)
PAUSE_SRC := pod/pause/pause.c
# The plugins' code (common/plugin.h): the pull stack (the registry
# transport on libcurl, layer and archive reading on libarchive and the
# decompressors) and the HTTP listener on libmicrohttpd.
PULL_PLUGIN_SRC := image/registry_transport.c image/layer.c image/gzip.c image/import_archive.c \
	image/pull_plugin_table.c
HTTP_PLUGIN_SRC := crid/http_server_mhd.c
DAEMON_SRC := $(filter-out $(PAUSE_SRC) $(PULL_PLUGIN_SRC) $(HTTP_PLUGIN_SRC),$(DAEMON_SRC))

PROTO_C := $(GEN)/api.pb-c.c
PROTO_H := $(GEN)/api.pb-c.h

COMMON_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(OBJ)/%.o) $(OBJ)/gen/api.pb-c.o
CONMON_OBJ := $(CONMON_SRC:%.c=$(OBJ)/%.o)
PULL_PLUGIN_OBJ := $(PULL_PLUGIN_SRC:%.c=$(OBJ)/%.o)
HTTP_PLUGIN_OBJ := $(HTTP_PLUGIN_SRC:%.c=$(OBJ)/%.o)
PLUGIN_OBJ := $(PULL_PLUGIN_OBJ) $(HTTP_PLUGIN_OBJ)
PLUGINS := $(PLUGIN_DIR)/crid-pull.so $(PLUGIN_DIR)/crid-http.so

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Everything of the daemon except main() goes into the unit tests' link.
LIB_OBJ := $(filter-out $(OBJ)/crid/main.o,$(DAEMON_OBJ)) $(COMMON_OBJ) $(PLUGIN_OBJ)

.PHONY: all deps deps-run deps-test deps-bench host-setup run test unit integration fuzz bench install uninstall deb format \
	format-check clean
all: $(BIN)/crid $(BIN)/crid-conmon $(BIN)/crid-pause $(PLUGINS)

# Every group of scripts/deps.sh; `make run` installs only what running
# and building crid take, `make test` what the tests take on top.
deps:
	@scripts/deps.sh
deps-run:
	@scripts/deps.sh run build
deps-test:
	@scripts/deps.sh run build package test
deps-bench:
	@scripts/deps.sh run build bench

host-setup:
	@scripts/host-setup.sh

$(PROTO_C) $(PROTO_H): cri-api/api.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=cri-api --c_out=$(GEN) api.proto

$(OBJ)/gen/api.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -std=gnu11 -O2 -g -c $< -o $@

$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@printf '#define CRID_VERSION "%s"\n#define CRID_COMMIT "%s"\n' '$(CRID_VERSION)' \
		'$(CRID_COMMIT)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

.PHONY: FORCE
FORCE:

$(OBJ)/%.o: %.c | $(PROTO_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The plugins call the daemon's own functions (errors, logging, the
# store...): the binary exports exactly what their objects use.
PLUGIN_IMPORTS := $(BUILD)/plugin-imports.list
$(PLUGIN_IMPORTS): $(PLUGIN_OBJ)
	@nm -u -P $(PLUGIN_OBJ) | awk 'NF > 1 { print $$1 }' | sort -u \
		| awk 'BEGIN { print "{" } { print "  " $$1 ";" } END { print "};" }' > $@.tmp
	@mv $@.tmp $@

$(BIN)/crid: $(DAEMON_OBJ) $(COMMON_OBJ) $(PLUGIN_IMPORTS)
	@mkdir -p $(BIN)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $(DAEMON_OBJ) $(COMMON_OBJ) -Wl,--dynamic-list=$(PLUGIN_IMPORTS) \
		$(PKG_LIBS) -lpthread

# Position-independent, and exporting nothing but their table.
$(PLUGIN_OBJ): CFLAGS_ALL += -fPIC -fvisibility=hidden

$(PLUGIN_DIR)/crid-pull.so: $(PULL_PLUGIN_OBJ)
	@mkdir -p $(PLUGIN_DIR)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_ALL) -shared -o $@ $^ $(PULL_LIBS) -lpthread

$(PLUGIN_DIR)/crid-http.so: $(HTTP_PLUGIN_OBJ)
	@mkdir -p $(PLUGIN_DIR)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_ALL) -shared -o $@ $^ $(HTTP_LIBS) -lpthread

# One monitor per container: static, so an idle one maps no shared
# libraries (small RSS/PSS) and it keeps working across libc upgrades.
$(BIN)/crid-conmon: $(CONMON_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS_ALL) -static -o $@ $^

# The infra process of every pod: static, so it runs from a root
# filesystem that holds nothing but itself, and without a C library (its
# own system calls), so each pod pays a few pages for it.  x86_64 only.
PAUSE_FLAGS := -Os -ffreestanding -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -fno-pie -fcf-protection=none
PAUSE_LDFLAGS := -nostdlib -static -no-pie -s -Wl,--build-id=none -Wl,-z,norelro \
	-Wl,-z,noexecstack -Wl,-z,noseparate-code -Wl,--gc-sections
$(BIN)/crid-pause: $(PAUSE_SRC) $(VERSION_H)
	@mkdir -p $(BIN)
	$(CC) $(CPPFLAGS_ALL) -std=gnu11 $(WARNINGS) $(PAUSE_FLAGS) $(PAUSE_LDFLAGS) -o $@ $(PAUSE_SRC)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -o $@ $< $(LIB_OBJ) $(ALL_PKG_LIBS) -lcmocka -lpthread

# Fuzzers (tests/fuzz, libFuzzer): every parser of untrusted bytes.  They
# link the daemon's code built again with clang's instrumentation.  `make
# fuzz` runs each for FUZZ_SECONDS; `make test` runs them briefly.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJ := $(patsubst $(OBJ)/%.o,$(BUILD)/fuzz/obj/%.o,$(LIB_OBJ))
FUZZ_FLAGS := -g -O1 -fsanitize=address

$(BUILD)/fuzz/obj/gen/api.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	@clang $(CPPFLAGS_ALL) -std=gnu11 $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/obj/%.o: %.c | $(PROTO_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	@echo "  CC/FUZZ $<"
	@clang $(CPPFLAGS_ALL) -std=gnu11 -Wall -Wno-unused-parameter $(FUZZ_FLAGS) \
		-fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@echo "  LD/FUZZ $@"
	@clang $(CPPFLAGS_ALL) -std=gnu11 -Wno-comment $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) \
		$(ALL_PKG_LIBS) -lpthread

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
		echo "== $$f ($(FUZZ_SECONDS) s)"; \
		corpus=$$(mktemp -d); rc=0; \
		$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 $$corpus \
			> $$corpus.log 2>&1 || rc=$$?; \
		grep -E "^stat::number_of_executed_units|ERROR|SUMMARY" $$corpus.log || true; \
		if [ $$rc -ne 0 ]; then tail -40 $$corpus.log; fi; \
		rm -rf $$corpus $$corpus.log; \
		test $$rc -eq 0; \
	done

# A node that starts pods: without any CNI configuration, the default
# bridge network is installed (and said so).
run: deps-run
	$(MAKE) all
	scripts/host-setup.sh
	@if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json \
		>/dev/null 2>&1; then \
		install -d /etc/cni/net.d; \
		install -m 0644 contrib/10-crid-bridge.conflist /etc/cni/net.d/; \
		echo "run: no CNI configuration in /etc/cni/net.d: installed contrib/10-crid-bridge.conflist"; \
	fi
	$(BIN)/crid --log-level info

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: all
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration

test: deps-test
	$(MAKE) all
	$(MAKE) format-check
	scripts/host-setup.sh
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECONDS=5
	$(MAKE) integration

bench: deps-bench all host-setup
	/usr/bin/python3 tests/bench/run.py

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@out=$$(clang-format --dry-run $(FORMAT_FILES) 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; echo "run 'make format'"; exit 1; fi

# What `make install` puts in place, and `make uninstall` takes away.
INSTALLED_BINS := crid crid-conmon crid-pause
INSTALLED_PLUGINS := crid-pull.so crid-http.so
# contrib file:installed path; configuration an operator may change.
CONFFILES := crid.conf:/etc/crid/crid.conf crictl.yaml:/etc/crictl.yaml \
	10-crid-bridge.conflist:/etc/cni/net.d/10-crid-bridge.conflist

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(PLUGINDIR) \
		$(DESTDIR)/etc/crid $(DESTDIR)/etc/crid/crid.conf.d $(DESTDIR)/etc/cni/net.d
	install -m 0755 $(addprefix $(BIN)/,$(INSTALLED_BINS)) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(addprefix $(PLUGIN_DIR)/,$(INSTALLED_PLUGINS)) $(DESTDIR)$(PLUGINDIR)/
	install -m 0755 scripts/host-setup.sh $(DESTDIR)$(LIBEXECDIR)/host-setup
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' contrib/crid.service \
		> $(DESTDIR)$(UNITDIR)/crid.service
	@# Configuration an operator may have changed is never overwritten: the
	@# new default goes beside it as FILE.default, as Debian conffiles do.
	@set -e; for pair in $(CONFFILES); do \
		src=contrib/$${pair%%:*}; dst=$(DESTDIR)$${pair#*:}; \
		if [ -e "$$dst" ] && ! cmp -s "$$src" "$$dst"; then \
			install -m 0644 "$$src" "$$dst.default"; \
			echo "install: kept $$dst; the new default is $$dst.default"; \
		else install -m 0644 "$$src" "$$dst"; fi; \
	done

# Removes what `make install` put there, except configuration the
# operator changed (kept and named, as dpkg keeps changed conffiles);
# directories go only when empty.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALLED_BINS)) $(DESTDIR)$(UNITDIR)/crid.service \
		$(addprefix $(DESTDIR)$(PLUGINDIR)/,$(INSTALLED_PLUGINS)) \
		$(DESTDIR)$(LIBEXECDIR)/host-setup
	@set -e; for pair in $(CONFFILES); do \
		src=contrib/$${pair%%:*}; dst=$(DESTDIR)$${pair#*:}; \
		rm -f "$$dst.default"; \
		if [ -e "$$dst" ] && ! cmp -s "$$src" "$$dst"; then \
			echo "uninstall: kept $$dst: it differs from the installed default"; \
		else rm -f "$$dst"; fi; \
	done
	@rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)/etc/crid/crid.conf.d $(DESTDIR)/etc/crid \
		$(DESTDIR)/etc/cni/net.d $(DESTDIR)/etc/cni 2>/dev/null || true

# crid_<version>_<arch>.deb in build/ (dpkg-deb; scripts/build-deb.sh).
deb: all
	@scripts/build-deb.sh $(CRID_VERSION) $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
