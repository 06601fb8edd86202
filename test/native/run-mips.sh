#!/bin/bash
# test/native/td_core_test.c built for the router (MIPS 24Kc, musl, 32-bit) and run under
# qemu-user. Prints its VMTEST lines; one SKIP line and exit 0 without qemu or the toolchain.
set -u
cd "$(dirname "$0")/../.."
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
command -v qemu-mips-static >/dev/null || { echo "SKIP native-c-mips: qemu-mips-static not installed"; exit 0; }
[ -x "$CACHE/mips/bin/mips-musl-gcc" ] || { echo "SKIP native-c-mips: no MIPS musl toolchain (make mips-client-toolchain)"; exit 0; }
make -s build/mips_24kc/td_core_test || { echo "VMTEST FAIL native-c-mips-build: make build/mips_24kc/td_core_test failed"; exit 1; }
timeout -s KILL 120 qemu-mips-static -cpu 24Kc build/mips_24kc/td_core_test | sed 's/^VMTEST \(PASS\|FAIL\|SKIP\) /VMTEST \1 mips-/'
exit "${PIPESTATUS[0]}"
