#!/bin/bash
# Boots two MIPS VMs joined by a qemu socket network (listen/connect on 127.0.0.1) and runs
# selftest-socketnet.sh in both. Exit 0 when both report VMTEST-RC=0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port="${PORT:-$((20000 + RANDOM % 20000))}"
"$here/run-vm.sh" --no-build --name mipsA --env ROLE=a --timeout 120 "$here/selftest-socketnet.sh" -- \
  -netdev socket,id=n0,listen=127.0.0.1:$port -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0a &
a=$!
sleep 1
"$here/run-vm.sh" --no-build --name mipsB --env ROLE=b --timeout 120 "$here/selftest-socketnet.sh" -- \
  -netdev socket,id=n0,connect=127.0.0.1:$port -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0b
b=$?
wait $a; a=$?
echo "socketnet: mipsA rc=$a mipsB rc=$b"
[ $a -eq 0 ] && [ $b -eq 0 ]
