# hypr - a Dockerfile builder for microVMs.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/lib/hypr
MANDIR ?= $(PREFIX)/share/man
# where bash-completion and zsh (Debian's fpath) look
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wvla \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-format-nonliteral -Ilib
ifeq ($(SANITIZE),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SANITIZE),thread)
override CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=thread
endif
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif

PKGS := libarchive jansson libcrypto yaml-0.1 zlib
override CFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -larchive -ljansson -lcrypto -lyaml -lz)

B := build
LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
# A tool is tools/NAME.c, or tools/NAME/*.c once it grows.
TOOLS := $(sort $(basename $(notdir $(wildcard tools/hypr*.c))) \
	$(notdir $(patsubst %/,%,$(wildcard tools/hypr*/))))
BINS := $(TOOLS:%=$(B)/bin/%)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNITS := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
MAN1 := $(wildcard man/*.1)
MAN5 := $(wildcard man/*.5)
MAN7 := $(wildcard man/*.7)

all: $(BINS) $(B)/completion/_hypr guest

-include pipeline/vm/vm.mk

# Dependencies come from the compiler (-MMD -MP): touching a tool's own
# header rebuilds what includes it, and nothing else.
# An object without its .d is rebuilt (its headers are unknown).
$(B)/%.o: %.c $(B)/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

ALL_SRC := $(LIB_SRC) $(wildcard tools/*.c tools/*/*.c) $(UNIT_SRC)
DEPS := $(ALL_SRC:%.c=$(B)/%.d)
# named explicitly: not intermediate files, so a missing one counts
$(DEPS):
-include $(wildcard $(DEPS))

$(B)/libhypr.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

.SECONDEXPANSION:
$(B)/bin/%: $$(addprefix $(B)/,$$(addsuffix .o,$$(basename $$(wildcard tools/$$*.c tools/$$*/*.c)))) $(B)/libhypr.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/unit/%: $(B)/tests/unit/%.o $(B)/libhypr.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# zsh's completion is bash's, run under bashcompinit (tools/completion/).
$(B)/completion/_hypr: tools/completion/_hypr.zsh tools/completion/hypr.bash
	@mkdir -p $(dir $@)
	sed -e '/^# @HYPR_BASH@$$/{r tools/completion/hypr.bash' -e 'd}' tools/completion/_hypr.zsh > $@.tmp
	mv $@.tmp $@

check-unit: $(UNITS)
	@set -e; for u in $(UNITS); do echo "unit: $$u"; $$u; done

# BATSFLAGS="--filter-tags '!vm'" skips the build-VM tests.
BATS_FILES ?= tests
check: all check-unit
	HYPR_BIN="$(CURDIR)/$(B)/bin" HYPR_SRC="$(CURDIR)" bats $(BATSFLAGS) $(BATS_FILES)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(LIBEXECDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7)
	$(if $(GUEST_FILES),install -m 644 $(GUEST_FILES) $(DESTDIR)$(LIBEXECDIR))
	$(MAKE) install-completion

install-completion: $(B)/completion/_hypr
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 644 tools/completion/hypr.bash $(DESTDIR)$(BASHCOMPDIR)/hypr
	install -m 644 $(B)/completion/_hypr $(DESTDIR)$(ZSHCOMPDIR)/_hypr

# mandoc, shellcheck, and cppcheck over every C file (jansson's macros in
# tests/lint/cppcheck.cfg); each must be clean.
lint: $(B)/completion/_hypr
	mandoc -Tlint -Wwarning man/*
	shellcheck tools/*.sh tools/completion/hypr.bash .ci/run tests/*.bash tests/lib/*.sh bench/*.sh pipeline/vm/*.sh
	zsh -n $(B)/completion/_hypr tests/lib/*.zsh
	cppcheck --quiet --library=tests/lint/cppcheck.cfg --enable=warning,portability,performance \
		--std=c11 -D_GNU_SOURCE -Ilib --inline-suppr --error-exitcode=1 lib tools pipeline tests/unit

clean:
	rm -rf $(B)

.PHONY: all check check-unit install install-completion lint clean guest
# keep objects (intermediates of the pattern rules); not .SECONDARY, under
# which a missing .d would not make its object out of date
.PRECIOUS: $(B)/%.o

# The README's main job: build hypr, load a busybox base made locally (no
# registry), build examples/hello, list the images and run it.
demo: all kernel
	@test -f $(B)/busybox-oci/index.json || tests/lib/mkbase.sh $(B)/busybox-oci
	$(B)/bin/hypr load --name busybox:latest $(B)/busybox-oci
	$(B)/bin/hypr build -t hello:latest examples/hello
	$(B)/bin/hypr images
	$(B)/bin/hypr run --rm hello:latest
.PHONY: demo

# Fuzzing (clang, libclang-rt-14-dev: HYPR_FUZZ_DEPS=1 tools/install-deps.sh):
# each tests/fuzz/fuzz_NAME.c runs FUZZ_SECONDS from tests/fuzz/corpus/NAME.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE -Ilib $(shell pkg-config --cflags jansson 2>/dev/null) \
	-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ := $(LIB_SRC:lib/%.c=$(B)/fuzz/lib/%.o)
# the library once (instrumented for coverage), then each target links it
$(B)/fuzz/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(B)/fuzz/libhypr.a: $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/fuzz/libhypr.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/fuzz/libhypr.a $(LIBS)
fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/%)
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(B)/fuzz/corpus-$$t; \
		$(B)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=16384 \
			-artifact_prefix=$(B)/fuzz/ -print_final_stats=1 $(B)/fuzz/corpus-$$t tests/fuzz/corpus/$${t#fuzz_}; \
	done
.PHONY: fuzz
