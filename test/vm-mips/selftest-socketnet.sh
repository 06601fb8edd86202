#!/bin/sh
# Two-VM link check for run-vm.sh's extra qemu args (see selftest-socketnet-run.sh): each VM
# gets a virtio NIC joined by a qemu socket netdev; ROLE=a takes 198.51.100.1, ROLE=b .2 and
# pings a. Prints "VMTEST PASS mips-socketnet" in ROLE=b.
set -e
dev=eth0
ip link show "$dev" >/dev/null 2>&1 || { echo "VMTEST FAIL mips-socketnet: no $dev"; exit 1; }
case "$ROLE" in
  a) ip addr add 198.51.100.1/24 dev "$dev"; ip link set "$dev" up
     # stay up until b has pinged us 3 times (or 60 s)
     i=0; while [ $i -lt 600 ]; do
       [ "$(cat /sys/class/net/$dev/statistics/rx_packets)" -ge 4 ] && break; sleep 0.1; i=$((i+1))
     done
     sleep 2; ip -s link show "$dev"; echo "VMTEST a done" ;;
  b) ip addr add 198.51.100.2/24 dev "$dev"; ip link set "$dev" up
     ping -c 3 -W 5 198.51.100.1 || { ip -s link show "$dev"; ip neigh; echo "VMTEST FAIL mips-socketnet: no reply from a"; exit 1; }
     echo "VMTEST PASS mips-socketnet" ;;
  *) echo "VMTEST FAIL mips-socketnet: ROLE must be a or b"; exit 2 ;;
esac
