# x86_64 test VM (test/vm/): Debian amd64 kernel + busybox initramfs, cached in $(CACHE)/vm-x86_64/.
# `make vm-prep` builds it (idempotent, ~30 s cold); `make vm-test` boots one VM for all scenarios.
APT_PACKAGES += qemu-system-x86 busybox-static iproute2 nftables

.PHONY: vm-prep vm-test
vm-prep: deps
	test/vm/prep.sh

vm-test: vm-prep
	test/vm/run-scenarios.sh
