# Big-endian MIPS (OpenWrt ath79: 24Kc without FPU, musl, soft-float) toolchain and test VM.
# Everything is built into $(CACHE)/mips from Debian bookworm packages and sources; the
# scripts are idempotent (a second run only checks the cache). Not in BUILD_TARGETS.
#   mips-toolchain        musl (mips-sf) + libgcc-sf.a + kernel UAPI headers + $(MIPS_CC)
#   mips-toolchain-check  probe (double math + UDP) under qemu-mips-static -cpu 24Kc, FPU scan,
#                         negative control with Debian's hard-float toolchain
#   mips-kernel           big-endian Malta vmlinux (linux-source-6.1, scripts/mips/kernel-options.txt)
#   mips-userland         static busybox + iproute2 (ip, tc, genl) and the initramfs
#   mips-vm-selftest      boots the VM: netns + veth + static L2TPv3 + ping (VMTEST PASS mips-kernel-l2tp),
#                         musl probe runs, hard-float probe gets SIGILL (kernel has no FPU emulator)
#   mips-vm-socketnet     two VMs joined by a qemu socket netdev (run-vm.sh ... -- <qemu args>)
MIPS_APT := gcc-mips-linux-gnu binutils-mips-linux-gnu libc6-dev-mips-cross qemu-user-static \
  qemu-system-mips bison flex bc libssl-dev rsync cpio dpkg-dev xz-utils
APT_PACKAGES += $(MIPS_APT)
MIPS_CACHE := $(CACHE)/mips
MIPS_SYSROOT := $(MIPS_CACHE)/musl
# soft-float musl cross compiler for ath79 (dynamic linker /lib/ld-musl-mips-sf.so.1)
MIPS_CC := $(MIPS_CACHE)/bin/mips-musl-gcc
# run a MIPS binary built with $(MIPS_CC) on the host: $(MIPS_RUN) ./prog
MIPS_RUN := qemu-mips-static -cpu 24Kc -L $(MIPS_SYSROOT)
MIPS_CHECK_NO_FPU := scripts/mips/check-no-fpu.sh

.PHONY: mips-deps mips-toolchain mips-toolchain-check mips-kernel mips-userland mips-vm mips-vm-selftest mips-vm-socketnet
mips-deps:
	@scripts/ensure-apt.sh $(MIPS_APT)

mips-toolchain: mips-deps
	@scripts/mips/build-musl.sh >/dev/null
	@scripts/mips/install-kernel-headers.sh
	@echo "mips toolchain: $(MIPS_CC)"

mips-toolchain-check: mips-toolchain
	scripts/mips/check-toolchain.sh

mips-kernel: mips-deps
	@scripts/mips/build-kernel.sh

mips-userland: mips-toolchain
	@scripts/cross/build-userland.sh mips_24kc >/dev/null
	@test/vm-mips/make-initramfs.sh mips_24kc

mips-vm: mips-kernel mips-userland

mips-vm-selftest: mips-vm mips-toolchain-check
	test/vm-mips/run-vm.sh --no-build test/vm-mips/selftest-l2tp.sh

mips-vm-socketnet: mips-vm
	test/vm-mips/selftest-socketnet-run.sh
