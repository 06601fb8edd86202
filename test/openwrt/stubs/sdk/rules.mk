# Test stand-in for the OpenWrt buildroot's rules.mk: only what openwrt/Makefile uses, with the
# same meanings (install modes as in OpenWrt's rules.mk; a big-endian soft-float mips target).
INCLUDE_DIR := $(TOPDIR)/include
BUILD_DIR := $(TOPDIR)/build_dir
DL_DIR := $(TOPDIR)/dl
ARCH := mips
CONFIG_BIG_ENDIAN := y
CONFIG_SOFT_FLOAT := y
TARGET_CROSS := mips-openwrt-linux-musl-
TARGET_CC := $(TARGET_CROSS)gcc
TARGET_CFLAGS := -Os -pipe -mno-branch-likely -mips32r2 -mtune=24kc
TARGET_LDFLAGS := -L$(TOPDIR)/staging_dir/target/usr/lib
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
