#!/bin/bash
# User-mode tests of the ath79 build build/mips_24kc/tunneldigger under `qemu-mips-static -cpu
# 24Kc` (test/run.sh's suite mips-user): the same checks as for the other router archs.
exec "$(dirname "$0")/../cross/run-user.sh" mips_24kc
