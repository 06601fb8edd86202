#!/bin/sh
# /init of the big-endian MIPS test VM (busybox sh). Mounts the host's root read-only at
# /host (9p, nosuid: see below), runs the script named by `vmtest=` on the kernel command
# line, prints VMTEST-RC=<n> on the console and powers off.
# Kernel command-line words of the form KEY=VALUE that the kernel does not know arrive here
# as environment variables (run-vm.sh --env), and are inherited by the script.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /run/vmout
hostname "${VMNAME:-mipsvm}"
ip link set lo up
echo "VMTEST init at $(cut -d' ' -f1 /proc/uptime)s: $(uname -m) $(uname -r), $(grep -m1 'cpu model' /proc/cpuinfo | sed 's/.*: //')"
# 9p2000.L passes host errno numbers verbatim: x86 EOPNOTSUPP (95) for the xattr lookup that
# exec does arrives as ENOTSOCK (95 on MIPS) and every exec fails. nosuid skips that lookup.
if grep -q hostroot /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro,nosuid hostroot /host \
    || echo "VMTEST warning: host share not mounted"
fi
if grep -q vmout /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,nosuid vmout /run/vmout \
    || echo "VMTEST warning: vmout share not mounted"
fi
script=""
for w in $(cat /proc/cmdline); do
  case "$w" in vmtest=*) script="${w#vmtest=}" ;; esac
done
rc=0
if [ -z "$script" ]; then
  echo "VMTEST no vmtest= on the kernel command line"; rc=2
elif [ -f "/host$script" ]; then
  export HOST=/host
  cd "/host$(dirname "$script")" && sh "/host$script"; rc=$?
elif [ -f "$script" ]; then
  sh "$script"; rc=$?
else
  echo "VMTEST script $script not found (host share mounted at /host?)"; rc=2
fi
echo "VMTEST-RC=$rc"
sync
poweroff -f
