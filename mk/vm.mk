# x86_64 test VM (test/vm/): Debian amd64 kernel + busybox initramfs, cached in $(CACHE)/vm-x86_64/.
# `make vm-prep` builds it (idempotent, ~30 s cold); `make vm-test` boots one VM for all scenarios.
APT_PACKAGES += qemu-system-x86 busybox-static iproute2 nftables

.PHONY: vm-prep vm-test
vm-prep: deps
	test/vm/prep.sh

vm-test: vm-prep
	test/vm/run-scenarios.sh

# `make demo`: one VM boot showing a broker and a client building a real L2TPv3 tunnel
# (test/vm/demo.sh: logs, interfaces, negotiated MTU, ping; last line SUCCESS/FAILED).
.PHONY: demo
demo: build vm-prep
	test/vm/demo.sh
