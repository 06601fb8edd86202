# OpenWrt package (issue 3): `make ipk` -> dist/tunneldigger_<version>-1_mips_24kc.ipk.
# The binary rule (build/mips_24kc/tunneldigger) lives in mk/mips-client.mk; only the dependency is
# declared here. openwrt/Makefile is the SDK/feed variant of the same package.
IPK_VERSION := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
IPK_FILE    := dist/tunneldigger_$(IPK_VERSION)-r1_mips_24kc.ipk

# xz: size report; busybox-static + file: test/openwrt/run.sh (init script under ash in a chroot).
APT_PACKAGES += xz-utils busybox-static file

.PHONY: ipk
ipk: $(IPK_FILE)

$(IPK_FILE): build/mips_24kc/tunneldigger openwrt/ipk-build.sh openwrt/files/tunneldigger.init \
    openwrt/files/tunneldigger.config package.json
	BIN=$< OUT_DIR=$(@D) openwrt/ipk-build.sh
