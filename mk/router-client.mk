# Router builds of the client for the other OpenWrt package architectures Freifunk networks run
# (mips_24kc, ath79, stays in mk/mips-client.mk):
#   mipsel_24kc               ramips MT7621/MT76x8   build/mipsel_24kc/tunneldigger
#   arm_cortex-a7_neon-vfpv4  ipq40xx                build/arm_cortex-a7_neon-vfpv4/tunneldigger
#   aarch64_cortex-a53        MediaTek Filogic       build/aarch64_cortex-a53/tunneldigger
#   x86_64                    x86/64                 build/x86_64-musl/tunneldigger
# (build/x86_64/ is the host glibc build of mk/quickjs.mk.) `make <arch>` builds one and prints
# its sizes; `make ipk ARCH=<arch>` / `make ipks` package them (mk/openwrt.mk).
#
# Same pipeline and size discipline as mk/mips-client.mk: -Os, LTO, gc-sections, non-PIE,
# dynamically linked against the router's musl (/lib/ld-musl-*.so.1), stripped. Toolchains:
# Debian's cross gcc + musl built from Debian's source by scripts/cross/build-musl.sh into
# $(CACHE)/<arch>/ (ABI flags in the wrapper; table in scripts/cross/arch.sh).
# Bytecode: all four are little-endian, so they link the host qjsc's build/qjs/client_bytecode.c
# (QuickJS bytecode does not depend on the word size; test/cross/run-user.sh checks that it is
# byte-identical to what a 32-bit target qjsc writes).
# Not in BUILD_TARGETS: `make build` stays as fast as before; the per-arch tests
# (test/cross/run-user.sh, run by test/run.sh) and `make ipks` build what they need.

ROUTER_ARCHES := mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64
# Debian cross prefix per arch (same table as scripts/cross/arch.sh)
RC_TRIPLE_mipsel_24kc              := mipsel-linux-gnu
RC_TRIPLE_arm_cortex-a7_neon-vfpv4 := arm-linux-gnueabihf
RC_TRIPLE_aarch64_cortex-a53       := aarch64-linux-gnu
RC_TRIPLE_x86_64                   := x86_64-linux-gnu
# Code-size flags on top of the wrapper's ABI flags. MIPS16e as on mips_24kc (MIPS's 24KEc and
# 1004Kc cores list it; not yet checked on a ramips device: MIPSEL_MIPS16=0 builds plain
# mips32r2, about 15 % bigger compressed). Thumb-2 on the Cortex-A7 (the same role).
MIPSEL_MIPS16 ?= 1
RC_ISA_mipsel_24kc              := -mno-shared -mplt $(if $(filter 1,$(MIPSEL_MIPS16)),-mips16 -minterlink-mips16)
RC_ISA_arm_cortex-a7_neon-vfpv4 := -mthumb
RC_ISA_aarch64_cortex-a53       :=
RC_ISA_x86_64                   :=
RC_DIR_x86_64 := build/x86_64-musl
rc_dir = $(or $(RC_DIR_$(1)),build/$(1))
# the stripped binary of any of the five package architectures (mk/openwrt.mk, tests)
router_bin = $(if $(filter mips_24kc,$(1)),build/mips_24kc/tunneldigger,$(call rc_dir,$(1))/tunneldigger)

RC_OPT     := -Os -ffunction-sections -fdata-sections -flto -fno-pie \
  -fno-asynchronous-unwind-tables -fno-unwind-tables
RC_LDFLAGS := -flto=2 -no-pie -Wl,--gc-sections

APT_PACKAGES += qemu-user-static xz-utils gcc-mipsel-linux-gnu binutils-mipsel-linux-gnu \
  gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu

.PHONY: router-clients router-force $(ROUTER_ARCHES) $(addprefix router-toolchain-,$(ROUTER_ARCHES))
router-clients: $(foreach a,$(ROUTER_ARCHES),$(call router_bin,$(a)))

# RC_TEMPLATE <arch>: toolchain, objects, link (unstripped, checked) and strip for one arch
define RC_TEMPLATE
RC_CC_$(1)    := $(CACHE)/$(1)/bin/$(1)-musl-gcc
RC_D_$(1)     := $(call rc_dir,$(1))
RC_CF_$(1)    := $$(RC_ISA_$(1)) $(RC_OPT)
RC_LIBO_$(1)  := $(patsubst %.c,$(call rc_dir,$(1))/obj/qjs/%.o,$(QJS_CLIENT_SRCS))
RC_OWNO_$(1)  := $(patsubst %.c,$(call rc_dir,$(1))/obj/%.o,$(QJS_OWN_SRCS))

$(1): $(call rc_dir,$(1))/tunneldigger
	@scripts/mips-client/sizes.sh $$< $(1)

# musl + wrapper in $(CACHE)/$(1), built once (idempotent script, ~1 min cold)
router-toolchain-$(1): | deps
	@[ -x $$(RC_CC_$(1)) ] && [ -f $(CACHE)/$(1)/musl/lib/libc.so ] || scripts/cross/build-musl.sh $(1) >/dev/null
	@[ -x $$(RC_CC_$(1)) ] || { echo "router-client: $$(RC_CC_$(1)) missing after scripts/cross/build-musl.sh $(1)" >&2; exit 1; }

# the compile flags, rewritten only when they change: a flag change rebuilds the objects
$$(RC_D_$(1))/obj/cflags: router-force
	@mkdir -p $$(@D)
	@echo '$$(RC_CC_$(1)) $$(RC_CF_$(1)) $(QJS_MIN_DEFS)' | cmp -s - $$@ || \
	  echo '$$(RC_CC_$(1)) $$(RC_CF_$(1)) $(QJS_MIN_DEFS)' >$$@

$$(RC_D_$(1))/obj/qjs/%.o: $(QJS_STAMP) $$(RC_D_$(1))/obj/cflags | router-toolchain-$(1)
	@mkdir -p $$(@D)
	t=$$@.$$$$$$$$.tmp; $$(RC_CC_$(1)) $$(RC_CF_$(1)) $(QJS_MIN_DEFS) -w -c -o $$$$t $(QJS_SRC)/$$*.c && mv $$$$t $$@

$$(RC_D_$(1))/obj/%.o: qjs-native/%.c $(wildcard qjs-native/*.h) $(QJS_STAMP) $$(RC_D_$(1))/obj/cflags | router-toolchain-$(1)
	@mkdir -p $$(@D)
	t=$$@.$$$$$$$$.tmp; $$(RC_CC_$(1)) $$(RC_CF_$(1)) -Wall -I$(QJS_SRC) -Iqjs-native -c -o $$$$t $$< && mv $$$$t $$@

# unstripped first: the FPU scan (soft-float MIPS) needs the symbols
$$(RC_D_$(1))/tunneldigger.unstripped: $$(RC_LIBO_$(1)) $$(RC_OWNO_$(1)) build/qjs/client_bytecode.c
	t=$$@.$$$$$$$$.tmp; $$(RC_CC_$(1)) $$(RC_CF_$(1)) -Wall -I$(QJS_SRC) $(RC_LDFLAGS) -o $$$$t $$^ && \
	  { [ "$(filter mips%,$(1))" = "" ] || OBJDUMP=$(RC_TRIPLE_$(1))-objdump scripts/mips/check-no-fpu.sh $$$$t || { rm -f $$$$t; exit 1; }; } && \
	  mv $$$$t $$@

$$(RC_D_$(1))/tunneldigger: $$(RC_D_$(1))/tunneldigger.unstripped
	t=$$@.$$$$$$$$.tmp; $(RC_TRIPLE_$(1))-strip -s -R .comment -o $$$$t $$< && mv $$$$t $$@
	@echo "router-client: $$@ $$$$(stat -c %s $$@) bytes (stripped, $(1))"
endef
$(foreach a,$(ROUTER_ARCHES),$(eval $(call RC_TEMPLATE,$(a))))

# for test/cross/run-user.sh (builds a target qjsc with the same sources and switches)
.PHONY: router-qjs-vars
router-qjs-vars:
	$(info QJS_SRC=$(QJS_SRC))
	$(info QJS_MIN_DEFS=$(QJS_MIN_DEFS))
	@:

# ---- packages: `make ipk ARCH=<arch>` (mk/openwrt.mk) and `make ipks` ----------------------------
# Budget per ipk (issue 11): 192 KiB for MIPS and ARM, 256 KiB for x86_64; ipk-build.sh refuses
# to write a bigger one. mips_24kc's rule is in mk/openwrt.mk; the size table checks all five.
define RC_IPK_TEMPLATE
$(call ipk_file,$(1)): $(call router_bin,$(1)) openwrt/ipk-build.sh openwrt/files/tunneldigger.init \
    openwrt/files/tunneldigger.config package.json
	BIN=$$< OUT_DIR=$$(@D) ARCH=$(1) STRIP=$(RC_TRIPLE_$(1))-strip \
	  BUDGET_KIB=$(if $(filter x86_64,$(1)),256,192) openwrt/ipk-build.sh
endef
$(foreach a,$(ROUTER_ARCHES),$(eval $(call RC_IPK_TEMPLATE,$(a))))

.PHONY: ipks router-sizes
ipks: $(foreach a,$(IPK_ARCHES),$(call ipk_file,$(a)))
	@scripts/cross/size-table.sh $(foreach a,$(IPK_ARCHES),$(a):$(call router_bin,$(a)):$(call ipk_file,$(a)))

# the table for whatever is built (no build)
router-sizes:
	@scripts/cross/size-table.sh

# ---- little-endian MIPS test VM (test/vm-mipsel/): Debian's packaged mipsel Malta kernel ---------
# Kernel + modules downloaded (linux-image-*-4kc-malta), busybox + iproute2 built with the mipsel
# musl toolchain, all cached in $(CACHE)/mipsel_24kc/. The full-system test (mipsel client in
# this VM against the Node broker in the x86 VM) is test/vm-mipsel/run-scenarios.sh.
.PHONY: mipsel-vm mipsel-vm-test
mipsel-vm: router-toolchain-mipsel_24kc
	@test/vm-mips/make-initramfs.sh mipsel_24kc >/dev/null

mipsel-vm-test:
	test/vm-mipsel/run-scenarios.sh
