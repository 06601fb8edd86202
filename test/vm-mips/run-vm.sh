#!/bin/bash
# usage: test/vm-mips/run-vm.sh [options] <script> [-- <extra qemu args>...]
# Boots the big-endian MIPS Malta VM (qemu-system-mips -cpu 24Kc: no FPU, like ath79 routers)
# with the test initramfs, runs <script> (a host path; the host root is mounted read-only at
# /host inside the VM, $HOST=/host) with busybox sh as root, and exits with the script's
# status (the VM prints VMTEST-RC=<n>). 124 = hard timeout, 125 = no VMTEST-RC seen.
# options:
#   --timeout SEC     hard timeout for the whole VM run (default 180)
#   --env KEY=VALUE   environment variable for the script (passed on the kernel command line;
#                     no spaces), repeatable
#   --name NAME       VM hostname and console log prefix (default mipsvm)
#   --log FILE        console log (default $CACHE/mips/vm-<name>.log)
#   --vmout DIR       host dir mounted writable at /run/vmout (default $CACHE/mips/vmout)
#   --no-build        do not (re)build kernel and initramfs, use the cached ones
#   --mipsel          the little-endian VM instead (qemu-system-mipsel, Debian's packaged
#                     4kc-malta kernel + modules, mipsel musl userland: make-initramfs.sh mipsel_24kc);
#                     give it before --vmout (it changes that default)
# Everything after `--` goes to qemu unchanged, e.g. a link to another VM:
#   -- -netdev socket,id=n0,listen=127.0.0.1:10001 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:02
# (the kernel has virtio-net and pcnet32 built in; the guest names it eth0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE="${CACHE:-$HOME/.cache/tunneldigger}"
timeout=180 name=mipsvm log="" vmout="$CACHE/mips/vmout" build=1 envs=()
qemu=qemu-system-mips vmcache="$CACHE/mips"
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout="$2"; shift 2 ;;
    --env) [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*=[^[:space:]]*$ ]] || { echo "run-vm: bad --env '$2' (KEY=VALUE, no spaces)" >&2; exit 2; }
           envs+=("$2"); shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --log) log="$2"; shift 2 ;;
    --vmout) vmout="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --mipsel) qemu=qemu-system-mipsel vmcache="$CACHE/mipsel_24kc" vmout="$CACHE/mipsel_24kc/vmout"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) break ;;
    -*) echo "run-vm: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ "$1" != -- ] || { echo "usage: $0 [options] <script> [-- qemu args]" >&2; exit 2; }
script=$(realpath "$1"); shift
[ -f "$script" ] || { echo "run-vm: no such script $script" >&2; exit 2; }
[ "${1:-}" = -- ] && shift
[[ "$script" =~ [[:space:]] ]] && { echo "run-vm: script path must not contain spaces" >&2; exit 2; }
if [ "$qemu" = qemu-system-mipsel ]; then
  # make-initramfs.sh also downloads this kernel (its modules go into the initramfs)
  kernel="$vmcache/kernel/vmlinuz"; initrd="$vmcache/initramfs.cpio.gz"
  [ $build -eq 0 ] || initrd=$("$here/make-initramfs.sh" mipsel_24kc)
elif [ $build -eq 1 ]; then
  kernel=$("$root/scripts/mips/build-kernel.sh")
  initrd=$("$here/make-initramfs.sh" mips_24kc)
else
  kernel="$CACHE/mips/kernel/vmlinux"; initrd="$CACHE/mips/initramfs.cpio.gz"
fi
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "run-vm: kernel or initramfs missing (run make ${qemu#qemu-system-}-vm)" >&2; exit 2; }
mkdir -p "$vmout"
log="${log:-$vmcache/vm-$name.log}"
append="console=ttyS0 quiet panic=-1 vmtest=$script VMNAME=$name HOST_CACHE=$CACHE ${envs[*]:-}"
# qemu's Malta hands the kernel at most 255 bytes of command line, "rd_start=... rd_size=... "
# (about 45) included; the rest is cut off silently.
[ ${#append} -le 205 ] || { echo "run-vm: kernel command line is ${#append} bytes, Malta passes only ~205 besides the initrd: shorten the checkout path, --name or --env values" >&2; exit 2; }
t0=$(date +%s.%N)
set +e
timeout --foreground -k 5 "$timeout" "$qemu" -M malta -cpu 24Kc -m 256 -nic none \
  -display none -monitor none -serial stdio -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "$append" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$vmout,mount_tag=vmout,security_model=none,multidevs=remap" \
  "$@" </dev/null 2>&1 | tr -d '\r' | tee "$log" | sed -u "s/^/[$name] /"
qrc=${PIPESTATUS[0]}
set -e
secs=$(echo "$(date +%s.%N) - $t0" | bc)
rc=$(sed -n 's/^.*VMTEST-RC=\([0-9]*\).*$/\1/p' "$log" | tail -1)
if [ -z "$rc" ]; then
  [ "$qrc" -eq 124 ] && { echo "run-vm: $name timed out after ${timeout}s (console log: $log)" >&2; exit 124; }
  echo "run-vm: $name ended (qemu rc=$qrc) without VMTEST-RC (console log: $log)" >&2; exit 125
fi
printf 'run-vm: %s VMTEST-RC=%s after %.1f s wall\n' "$name" "$rc" "$secs" >&2
exit "$rc"
