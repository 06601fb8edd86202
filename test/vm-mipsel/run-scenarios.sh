#!/bin/bash
# Little-endian MIPS full-system test (test/run.sh runs it): test/vm-mips/run-scenarios.sh --mipsel.
exec "$(dirname "$0")/../vm-mips/run-scenarios.sh" --mipsel "$@"
