# OpenWrt package (issue 3): `make ipk` -> dist/tunneldigger_<version>-r1_mips_24kc.ipk;
# `make ipk ARCH=<arch>` for the other router archs (mipsel_24kc, arm_cortex-a7_neon-vfpv4,
# aarch64_cortex-a53, x86_64; their rules and `make ipks`, all five + size table, are at the end
# of mk/router-client.mk). The binary rules live in mk/mips-client.mk and mk/router-client.mk;
# only the dependency is declared here. openwrt/Makefile is the SDK/feed variant of the same package.
IPK_VERSION := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
IPK_FILE    := dist/tunneldigger_$(IPK_VERSION)-r1_mips_24kc.ipk

# xz: size report; busybox-static + file: test/openwrt/run.sh (init script under ash in a chroot).
APT_PACKAGES += xz-utils busybox-static file

.PHONY: ipk
# ARCH: OpenWrt package architecture; the file name follows IPK_FILE with the arch replaced
ARCH     ?= mips_24kc
IPK_ARCHES := mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64
ipk_file = $(subst _mips_24kc.ipk,_$(1).ipk,$(IPK_FILE))
ipk: $(if $(filter $(ARCH),$(IPK_ARCHES)),$(call ipk_file,$(ARCH)),ipk-unknown-arch)
ipk-unknown-arch:
	@echo "ipk: ARCH=$(ARCH) is not a package architecture this build knows; use one of: $(IPK_ARCHES)" >&2; exit 1
.PHONY: ipk-unknown-arch

$(IPK_FILE): build/mips_24kc/tunneldigger openwrt/ipk-build.sh openwrt/files/tunneldigger.init \
    openwrt/files/tunneldigger.config package.json
	BIN=$< OUT_DIR=$(@D) openwrt/ipk-build.sh
