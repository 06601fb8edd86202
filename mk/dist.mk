# Release tarball (issue 11): `make dist` -> dist/tunneldigger-<version>.tar.gz, the PKG_SOURCE
# of the OpenWrt feed package (openwrt/Makefile). It holds what an offline SDK build needs and
# nothing it cannot have: the client's C sources, the QuickJS source its bytecode belongs to, and
# the bytecode for both byte orders (little: the host qjsc of mk/quickjs.mk; big: the MIPS qjsc
# under qemu of mk/mips-client.mk), so the SDK needs no Node, npm, network or qemu.
# Contents and build: scripts/release/make-dist.sh, scripts/release/Makefile.
#   make dist        builds the tarball, prints its sha256 and whether openwrt/Makefile has it
#   make dist-hash   writes that sha256 into openwrt/Makefile's PKG_HASH (release step)
# Included before mk/mips-client.mk and mk/quickjs.mk (sorted): their variables are used through
# recursive variables and secondary expansion.
.SECONDEXPANSION:

DIST_VERSION := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
DIST_FILE    := dist/tunneldigger-$(DIST_VERSION).tar.gz

.PHONY: dist dist-hash
dist: $(DIST_FILE)
	@h=$$(sha256sum $< | cut -d' ' -f1); m=$$(sed -n 's/^PKG_HASH:=//p' openwrt/Makefile); \
	if [ "$$h" = "$$m" ]; then echo "dist: openwrt/Makefile PKG_HASH matches $<"; \
	else echo "dist: openwrt/Makefile has PKG_HASH $$m, not this tarball's $$h; a release needs make dist-hash (or build with PKG_HASH=skip)"; fi

dist-hash: $(DIST_FILE)
	@h=$$(sha256sum $< | cut -d' ' -f1); \
	grep -q '^PKG_HASH:=' openwrt/Makefile || { echo "dist-hash: openwrt/Makefile has no PKG_HASH:= line" >&2; exit 1; }; \
	sed -i "s/^PKG_HASH:=.*/PKG_HASH:=$$h/" openwrt/Makefile && echo "dist-hash: openwrt/Makefile PKG_HASH:=$$h"

$(DIST_FILE): scripts/release/Makefile scripts/release/make-dist.sh package.json \
    build/qjs/client_bytecode.c build/mips_24kc/client_bytecode.c $$(QJS_STAMP) \
    $(wildcard qjs-native/*.c qjs-native/*.h)
	VERSION='$(DIST_VERSION)' OUT_DIR='$(@D)' QJS_SRC='$(QJS_SRC)' QJS_VERSION='$(QJS_VERSION)' \
	  QJS_CLIENT_SRCS='$(QJS_CLIENT_SRCS)' QJS_OWN_SRCS='$(QJS_OWN_SRCS)' QJS_MIN_DEFS='$(QJS_MIN_DEFS)' \
	  BYTECODE_LITTLE=build/qjs/client_bytecode.c BYTECODE_BIG=build/mips_24kc/client_bytecode.c \
	  scripts/release/make-dist.sh
