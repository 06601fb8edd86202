# Router build of the client: build/mips_24kc/tunneldigger (OpenWrt ath79: big-endian MIPS 24Kc,
# no FPU, musl), and `make openwrt-client` for the OpenWrt SDK (contract: openwrt/README.md).
#
# Same pipeline as mk/quickjs.mk (bundle -> qjsc bytecode -> QuickJS + qjs-native/*.c), with
# two MIPS twists (../shared/recipes/quickjs-build.md):
#  * the bytecode comes from a big-endian MIPS qjsc run under qemu-mips-static: `qjsc -x`
#    byte-swaps JS bytecode but not regexp-literal bytecode (SIGSEGV on the router);
#  * the binary must contain no FPU instruction (SIGILL on a 24Kc): soft-float musl toolchain
#    from scripts/mips/ (mk/mips.mk), and scripts/mips/check-no-fpu.sh on the unstripped ELF.
#
# This fragment is included before mk/quickjs.mk (sorted names), so everything taken from there
# (QJS_SRC, QJS_STAMP, QJS_LIB_SRCS, QJS_CLIENT_SRCS, QJS_OWN_SRCS, QJS_MIN_DEFS, QJS_HOST_QJSC) is used through recursive
# variables and, in prerequisite lists, through secondary expansion ($$).
.SECONDEXPANSION:

MIPSC_CACHE   := $(CACHE)/mips-client
MIPSC_CC      ?= $(CACHE)/mips/bin/mips-musl-gcc
MIPSC_SYSROOT := $(CACHE)/mips/musl
MIPSC_CROSS   := mips-linux-gnu-
MIPSC_QEMU    := qemu-mips-static -cpu 24Kc
MIPSC_DIR     := build/mips_24kc
# Big-endian qjsc (static, soft-float, -O2, full compiler): only ever runs under qemu-user.
MIPSC_QJSC    := $(MIPSC_CACHE)/qjsc-mips-be/qjsc
# Code generation, measured in bench/size.md (scripts/mips-client/measure-variants.sh):
# MIPS16e (-mips16 -minterlink-mips16; ath79's 24Kc implements it) cuts gzip -9 by 13 %, and
# -mno-shared -mplt (non-PIC code for an executable; libc calls through a PLT) by another 8 %.
# MIPS16=0 builds plain mips32r2 code (faster, 16 % bigger compressed: over the ipk budget).
MIPS16        ?= 1

APT_PACKAGES  += qemu-user-static gcc-mips-linux-gnu binutils-mips-linux-gnu xz-utils
BUILD_TARGETS += $(MIPSC_DIR)/tunneldigger

MIPSC_ISA     := -march=mips32r2 -mtune=24kc -msoft-float -mno-shared -mplt \
  $(if $(filter 1,$(MIPS16)),-mips16 -minterlink-mips16)
MIPSC_OPT     := -Os -ffunction-sections -fdata-sections -flto -fno-pie
MIPSC_CFLAGS   = $(MIPSC_ISA) $(MIPSC_OPT) $(QJS_MIN_DEFS)
MIPSC_OWN_CFLAGS = $(MIPSC_ISA) $(MIPSC_OPT) -Wall -I$(QJS_SRC) -Iqjs-native
MIPSC_LDFLAGS := -flto=2 -no-pie -Wl,--gc-sections -Wl,-dynamic-linker=/lib/ld-musl-mips-sf.so.1
MIPSC_OBJ     := $(MIPSC_DIR)/obj$(if $(filter 1,$(MIPS16)),-mips16)
MIPSC_LIB_OBJS = $(patsubst %.c,$(MIPSC_OBJ)/qjs/%.o,$(QJS_CLIENT_SRCS))
MIPSC_OWN_OBJS = $(patsubst %.c,$(MIPSC_OBJ)/%.o,$(QJS_OWN_SRCS))
# the compile flags, rewritten only when they change: a flag change rebuilds the objects
MIPSC_FLAGS_FILE := $(MIPSC_OBJ)/cflags

.PHONY: mips_24kc mips-client-toolchain mips-sizes openwrt-client mips-client-force
mips_24kc: $(MIPSC_DIR)/tunneldigger
	@scripts/mips-client/sizes.sh $(MIPSC_DIR)/tunneldigger

mips-sizes: $(MIPSC_DIR)/tunneldigger
	@scripts/mips-client/sizes.sh $(MIPSC_DIR)/tunneldigger

# The musl toolchain belongs to scripts/mips/ (mk/mips.mk); build it on demand, idempotently.
mips-client-toolchain: | deps
	@command -v $(MIPSC_CC) >/dev/null && [ -f $(MIPSC_SYSROOT)/lib/libc.so ] || scripts/mips/build-musl.sh >/dev/null
	@command -v $(MIPSC_CC) >/dev/null || { echo "mips-client: $(MIPSC_CC) missing after scripts/mips/build-musl.sh; cannot build the MIPS client" >&2; exit 1; }

$(MIPSC_QJSC): $$(QJS_STAMP) | mips-client-toolchain
	@mkdir -p $(@D)
	@echo "mips-client: building the big-endian qjsc (static musl) for bytecode generation"
	t=$@.$$$$.tmp; (cd $(QJS_SRC) && $(MIPSC_CC) -O2 -static $(QJS_MIN_DEFS) -w -o $$t qjsc.c $(QJS_LIB_SRCS)) && \
	{ $(MIPSC_QEMU) $$t -h 2>&1 | grep -q 'QuickJS Compiler' || { echo "mips-client: $$t does not run under $(MIPSC_QEMU)" >&2; exit 1; }; } && \
	mv $$t $@

# Same qjsc options as the host build (mk/quickjs.mk), but native big-endian output.
$(MIPSC_DIR)/client_bytecode.c: build/qjs/client.js $(MIPSC_QJSC)
	@mkdir -p $(@D)
	t=$@.$$$$.tmp; $(MIPSC_QEMU) $(MIPSC_QJSC) -c -s -N qjsc_client -M tdnative,tdnative \
	  -M tdproc,tdproc -m -o $$t $< && mv $$t $@

$(MIPSC_FLAGS_FILE): mips-client-force
	@mkdir -p $(@D)
	@echo '$(MIPSC_CC) $(MIPSC_CFLAGS) $(MIPSC_OWN_CFLAGS)' | cmp -s - $@ || \
	  echo '$(MIPSC_CC) $(MIPSC_CFLAGS) $(MIPSC_OWN_CFLAGS)' >$@

$(MIPSC_OBJ)/qjs/%.o: $$(QJS_STAMP) $(MIPSC_FLAGS_FILE) | mips-client-toolchain
	@mkdir -p $(@D)
	t=$@.$$$$.tmp; $(MIPSC_CC) $(MIPSC_CFLAGS) -w -c -o $$t $(QJS_SRC)/$*.c && mv $$t $@

$(MIPSC_OBJ)/%.o: qjs-native/%.c $(wildcard qjs-native/*.h) $$(QJS_STAMP) $(MIPSC_FLAGS_FILE) | mips-client-toolchain
	@mkdir -p $(@D)
	t=$@.$$$$.tmp; $(MIPSC_CC) $(MIPSC_OWN_CFLAGS) -c -o $$t $< && mv $$t $@

# Temporary outputs carry the shell's pid: two makes building this at once (make test while
# someone runs make build) must not move each other's files away.
# Linked unstripped (the FPU scan needs symbols: stripped MIPS16 code disassembles as garbage),
# scanned, then stripped into the shipped file. Any FPU instruction fails the build.
$(MIPSC_DIR)/tunneldigger.unstripped: $$(MIPSC_LIB_OBJS) $$(MIPSC_OWN_OBJS) $(MIPSC_DIR)/client_bytecode.c
	t=$@.$$$$.tmp; $(MIPSC_CC) $(MIPSC_OWN_CFLAGS) $(MIPSC_LDFLAGS) -o $$t $^ && \
	  { OBJDUMP=$(MIPSC_CROSS)objdump scripts/mips/check-no-fpu.sh $$t || { rm -f $$t; exit 1; }; } && mv $$t $@

$(MIPSC_DIR)/tunneldigger: $(MIPSC_DIR)/tunneldigger.unstripped
	t=$@.$$$$.tmp; $(MIPSC_CROSS)strip -s -R .comment -o $$t $< && mv $$t $@
	@echo "mips-client: $@ $$(stat -c %s $@) bytes (stripped, MIPS16=$(MIPS16)), bytecode $$(grep -o 'qjsc_client_size = [0-9]*' $(MIPSC_DIR)/client_bytecode.c | grep -o '[0-9]*$$') bytes"

# ---- OpenWrt SDK: make openwrt-client TD_TARGET_CC=... TD_OUT=... (openwrt/README.md) --------
# The SDK compiler brings its own musl; nothing here uses scripts/mips/. Little-endian targets
# use the host qjsc's bytecode; big-endian ones need a target qjsc (linked -static with the SDK
# compiler) run under qemu-<arch>-static, because of the regexp byte-order bug above.
TD_TARGET_CC        ?=
TD_TARGET_CFLAGS    ?= -Os
TD_TARGET_LDFLAGS   ?=
TD_TARGET_ARCH      ?=
TD_TARGET_ENDIAN    ?= little
TD_TARGET_SOFT_FLOAT ?= 0
TD_OUT              ?= build/openwrt/tunneldigger
TD_QEMU             ?= qemu-$(TD_TARGET_ARCH)-static
TDO_DIR    := build/openwrt-$(or $(TD_TARGET_ARCH),unknown)-$(TD_TARGET_ENDIAN)
TDO_CFLAGS = $(TD_TARGET_CFLAGS) $(if $(filter 1,$(TD_TARGET_SOFT_FLOAT)),-msoft-float) \
  -ffunction-sections -fdata-sections -flto -fno-pie
TDO_LDFLAGS := $(TD_TARGET_LDFLAGS) -flto=2 -no-pie -Wl,--gc-sections
TDO_QJSC   := $(TDO_DIR)/qjsc-target

ifeq ($(TD_TARGET_ENDIAN),big)
TDO_BYTECODE_QJSC = $(TD_QEMU) $(TDO_QJSC)
TDO_BYTECODE_DEP  = $(TDO_QJSC)
else
TDO_BYTECODE_QJSC = $(QJS_HOST_QJSC)
TDO_BYTECODE_DEP  = $$(QJS_HOST_QJSC)
endif

openwrt-client: $(TDO_DIR)/tunneldigger
	@mkdir -p $(dir $(TD_OUT))
	cp $< $(TD_OUT)
	@echo "openwrt-client: $(TD_OUT) $$(stat -c %s $(TD_OUT)) bytes (unstripped; the SDK strips it)"

openwrt-client-check:
	@[ -n "$(TD_TARGET_CC)" ] || { echo "openwrt-client: TD_TARGET_CC is not set (pass the SDK's TARGET_CC); see openwrt/README.md" >&2; exit 1; }
	@command -v $(firstword $(TD_TARGET_CC)) >/dev/null || { echo "openwrt-client: target compiler '$(firstword $(TD_TARGET_CC))' not found" >&2; exit 1; }
	@case "$(TD_TARGET_ENDIAN)" in big|little) ;; *) echo "openwrt-client: TD_TARGET_ENDIAN must be big or little, not '$(TD_TARGET_ENDIAN)'" >&2; exit 1;; esac
	@[ "$(TD_TARGET_ENDIAN)" = little ] || command -v $(firstword $(TD_QEMU)) >/dev/null || { echo "openwrt-client: big-endian bytecode needs $(firstword $(TD_QEMU)) (Debian: qemu-user-static) to run the target qjsc; install it or set TD_QEMU" >&2; exit 1; }
.PHONY: openwrt-client-check

$(TDO_QJSC): $$(QJS_STAMP) | openwrt-client-check
	@mkdir -p $(@D)
	cd $(QJS_SRC) && $(TD_TARGET_CC) $(TD_TARGET_CFLAGS) -O2 -static $(QJS_MIN_DEFS) -w \
	  -o $(abspath $@).tmp qjsc.c $(QJS_LIB_SRCS) -lm
	mv $@.tmp $@

$(TDO_DIR)/client_bytecode.c: build/qjs/client.js $(TDO_BYTECODE_DEP) | openwrt-client-check
	@mkdir -p $(@D)
	$(TDO_BYTECODE_QJSC) -c -s -N qjsc_client -M tdnative,tdnative -M tdproc,tdproc \
	  -m -o $@.tmp $<
	mv $@.tmp $@

$(TDO_DIR)/tunneldigger: build/qjs/client.js $$(QJS_STAMP) $(wildcard qjs-native/*.c qjs-native/*.h) \
    $(TDO_DIR)/client_bytecode.c | openwrt-client-check
	@mkdir -p $(@D)
	$(TD_TARGET_CC) $(TDO_CFLAGS) $(QJS_MIN_DEFS) -w -I$(QJS_SRC) -Iqjs-native $(TDO_LDFLAGS) \
	  -o $@.tmp $(addprefix $(QJS_SRC)/,$(QJS_CLIENT_SRCS)) $(addprefix qjs-native/,$(QJS_OWN_SRCS)) \
	  $(TDO_DIR)/client_bytecode.c -lm
	mv $@.tmp $@
