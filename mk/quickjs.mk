# QuickJS client executable for the host: build/x86_64/tunneldigger.
#
# Pipeline: src/main/client/quickjs-main.ts --rollup--> build/qjs/client.js --qjsc--> bytecode C
# array --gcc (LTO, gc-sections)--> QuickJS engine + qjs-native/td_*.c + qjs-native/qjs_main.c
# (quickjs-libc only goes into qjsc: the client's event loop is qjs-native/td_qjs_loop.c).
# check-bundle.mjs fails the build if the bundle uses a global the client context lacks.
# The QuickJS source is Debian trixie's `quickjs` source package, fetched with a private apt
# state (host apt config untouched) and cached under $(CACHE)/quickjs.

QJS_VERSION   := 2025.04.26
QJS_CACHE     := $(CACHE)/quickjs
QJS_APT       := $(QJS_CACHE)/apt
QJS_SRC       := $(QJS_CACHE)/quickjs-$(QJS_VERSION)
QJS_STAMP     := $(QJS_SRC)/.td-unpacked
QJS_HOST_QJSC := $(QJS_CACHE)/host-$(QJS_VERSION)/qjsc
export QJS_SRC

APT_PACKAGES  += dpkg-dev xz-utils
BUILD_TARGETS += build/x86_64/tunneldigger

QJS_APT_OPTS = -o Dir::State=$(QJS_APT)/state -o Dir::State::status=$(QJS_APT)/state/status \
  -o Dir::Cache=$(QJS_APT)/cache -o Dir::Etc::SourceList=$(QJS_APT)/sources.list \
  -o Dir::Etc::SourceParts=$(QJS_APT)/sources.list.d -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq

# Engine sources (no qjs.c/repl.js: the client has no REPL and no eval).
QJS_LIB_SRCS := quickjs.c libregexp.c libunicode.c cutils.c quickjs-libc.c dtoa.c
# what the client links: the engine without quickjs-libc (std/os modules, js_std_loop)
QJS_CLIENT_SRCS := $(filter-out quickjs-libc.c,$(QJS_LIB_SRCS))
# the client's C files besides the engine (mk/mips-client.mk uses the same list)
QJS_OWN_SRCS := qjs_main.c td_core.c td_quickjs.c td_qjs_loop.c
# CONFIG_ATOMICS and USE_WORKER are unconditional #defines upstream; the unpack step below makes
# them switchable (-DQJS_NO_ATOMICS, -DQJS_NO_WORKER): mips32 musl has no __atomic_*_8 and the
# client needs no threads.
QJS_DEFS     := -D_GNU_SOURCE -DCONFIG_VERSION=\"$(subst .,-,$(QJS_VERSION))\"
QJS_MIN_DEFS := $(QJS_DEFS) -DQJS_NO_ATOMICS -DQJS_NO_WORKER

.PHONY: quickjs-src qjs-bundle qjs-client
quickjs-src: $(QJS_STAMP)
qjs-bundle: build/qjs/client.js
qjs-client: build/x86_64/tunneldigger

# apt verifies the Release signature and the hashes of the Sources index, and `apt-get source`
# checks the downloaded files against it; dpkg-source --no-check only skips the maintainer's
# .dsc signature (that key is not in debian-archive-keyring).
$(QJS_STAMP): | deps
	@echo "quickjs: fetching Debian trixie source package quickjs $(QJS_VERSION) into $(QJS_CACHE)"
	rm -rf $(QJS_APT) $(QJS_SRC) $(QJS_CACHE)/dl
	mkdir -p $(QJS_APT)/state/lists/partial $(QJS_APT)/cache/archives/partial \
	  $(QJS_APT)/sources.list.d $(QJS_CACHE)/dl
	touch $(QJS_APT)/state/status
	echo 'deb-src http://deb.debian.org/debian trixie main' > $(QJS_APT)/sources.list
	apt-get $(QJS_APT_OPTS) update
	cd $(QJS_CACHE)/dl && apt-get $(QJS_APT_OPTS) source --download-only quickjs
	@ls $(QJS_CACHE)/dl/quickjs_$(QJS_VERSION).orig.tar.xz >/dev/null 2>&1 || \
	  { echo "quickjs: trixie no longer has upstream version $(QJS_VERSION) (got: $$(ls $(QJS_CACHE)/dl)); update QJS_VERSION in mk/quickjs.mk" >&2; exit 1; }
	cd $(QJS_CACHE)/dl && dpkg-source --no-check -x quickjs_$(QJS_VERSION)-*.dsc $(QJS_SRC) >/dev/null
	rm -f $(QJS_CACHE)/quickjs_$(QJS_VERSION).orig.tar.xz # dpkg-source's copy next to the tree
	sed -i 's/^#define CONFIG_ATOMICS$$/#ifndef QJS_NO_ATOMICS\n#define CONFIG_ATOMICS\n#endif/' $(QJS_SRC)/quickjs.c
	sed -i 's/^#define USE_WORKER$$/#ifndef QJS_NO_WORKER\n#define USE_WORKER\n#endif/' $(QJS_SRC)/quickjs-libc.c
	grep -q '^#ifndef QJS_NO_ATOMICS' $(QJS_SRC)/quickjs.c
	grep -q '^#ifndef QJS_NO_WORKER' $(QJS_SRC)/quickjs-libc.c
	touch $@

# Host compiler for bytecode (x86_64, little-endian). Plain -O2, full features: it only compiles.
$(QJS_HOST_QJSC): $(QJS_STAMP)
	@mkdir -p $(@D)
	@echo "quickjs: building host qjsc"
	cd $(QJS_SRC) && gcc -O2 $(QJS_DEFS) -o $@.tmp qjsc.c $(QJS_LIB_SRCS) -lm -ldl -lpthread
	mv $@.tmp $@

# ---- bundle -> bytecode ------------------------------------------------------------------------
QJS_TS_SRCS := $(shell find src -name "*.ts" -not -path "src/runtime/node/*" -not -path "src/broker/*" -not -path "src/main/broker/*" 2>/dev/null)

build/qjs/client.js: rollup.config.js $(QJS_TS_SRCS) src/main/client/tsconfig.json \
    src/runtime/quickjs/check-bundle.mjs \
    node_modules/.package-lock.json
	@mkdir -p $(@D)
	npx rollup -c rollup.config.js --silent
	@node src/runtime/quickjs/check-bundle.mjs $@ || { rm -f $@; exit 1; }

# -s strips debug info (line numbers, source); -M marks the C modules as external.
build/qjs/client_bytecode.c: build/qjs/client.js $(QJS_HOST_QJSC)
	$(QJS_HOST_QJSC) -c -s -N qjsc_client -M tdnative,tdnative -M tdproc,tdproc -m -o $@ $<

# ---- executable --------------------------------------------------------------------------------
QJS_X86_DIR    := build/x86_64/obj
QJS_X86_OPT    := -Os -ffunction-sections -fdata-sections -flto
QJS_X86_CFLAGS := $(QJS_X86_OPT) $(QJS_MIN_DEFS)
QJS_X86_OWN_CFLAGS := $(QJS_X86_OPT) -Wall -I$(QJS_SRC) -Iqjs-native
QJS_X86_LDFLAGS := -flto=2 -Wl,--gc-sections -s
QJS_X86_LIB_OBJS := $(patsubst %.c,$(QJS_X86_DIR)/qjs/%.o,$(QJS_CLIENT_SRCS))
QJS_X86_OWN_OBJS := $(patsubst %.c,$(QJS_X86_DIR)/%.o,$(QJS_OWN_SRCS))

$(QJS_X86_DIR)/qjs/%.o: $(QJS_STAMP)
	@mkdir -p $(@D)
	gcc $(QJS_X86_CFLAGS) -w -c -o $@ $(QJS_SRC)/$*.c

$(QJS_X86_DIR)/%.o: qjs-native/%.c $(wildcard qjs-native/*.h) $(QJS_STAMP)
	@mkdir -p $(@D)
	gcc $(QJS_X86_OWN_CFLAGS) -c -o $@ $<

build/x86_64/tunneldigger: $(QJS_X86_LIB_OBJS) $(QJS_X86_OWN_OBJS) build/qjs/client_bytecode.c
	t=$@.$$$$.tmp; gcc $(QJS_X86_OWN_CFLAGS) $(QJS_X86_LDFLAGS) -o $$t $^ -lm && mv $$t $@
	@echo "quickjs: $@ $$(stat -c %s $@) bytes (stripped), bytecode $$(grep -o 'qjsc_client_size = [0-9]*' build/qjs/client_bytecode.c | grep -o '[0-9]*$$') bytes"
