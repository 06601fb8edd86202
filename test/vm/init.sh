#!/bin/busybox sh
# /init of the test VM (busybox). Loads the modules, shows the host root (9p, read-only) through
# an overlay with a tmpfs upper layer at /host, chroots into it and runs /run/vmout/.vmcmd.sh
# (written by run-vm.sh) with the host's /bin/sh (dash: busybox sh would run its own `ip`
# applet instead of iproute2). Prints VMTEST-RC=<n> and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "VMTEST-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"

fail() { echo "VMTEST-INIT-ERROR: $*"; echo "VMTEST-RC=99"; poweroff -f; sleep 5; }

while read -r m; do
  modprobe "$m" || echo "VMTEST-INIT: modprobe $m failed (continuing)"
done < /etc/vm-modules

mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /hostro ||
  fail "cannot mount the host root over 9p"
mount -t tmpfs -o size=2g,mode=0755 overlay /overlay
mkdir -p /overlay/upper /overlay/work
mount -t overlay -o lowerdir=/hostro,upperdir=/overlay/upper,workdir=/overlay/work overlay /host ||
  fail "cannot mount the overlay on the host root"
# `ip netns` does `mount --make-rslave /`, so the chroot root must be a mount point (it is) and
# everything below it must be mounted fresh here.
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t tmpfs -o mode=0755 run /host/run
mkdir -p /host/run/vmout /host/run/netns
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmout /host/run/vmout ||
  fail "cannot mount the results share (vmout)"
[ -f /host/run/vmout/.vmcmd.sh ] || fail "no /run/vmout/.vmcmd.sh (run the VM through test/vm/run-vm.sh)"
hostname vmtest
ip link set lo up

echo "VMTEST-START uptime=$(cut -d' ' -f1 /proc/uptime)"
rm -f /rc
{
  chroot /host /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb VMOUT=/run/vmout \
    /bin/sh /run/vmout/.vmcmd.sh </dev/null 2>&1
  echo $? > /rc
} | tee /host/run/vmout/transcript.txt
rc=$(cat /rc 2>/dev/null || echo 98)
echo "VMTEST-END uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
umount /host/run/vmout 2>/dev/null
echo "VMTEST-RC=$rc"
poweroff -f
