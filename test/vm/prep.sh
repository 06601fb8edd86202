#!/bin/bash
# Prepares the x86_64 test VM: Debian's amd64 kernel (downloaded, never installed on the host)
# and a busybox initramfs carrying the module closure the scenarios need.
# Output: $CACHE/vm-x86_64/<kver>/{vmlinuz,initramfs.cpio.gz}; $CACHE/vm-x86_64/current names <kver>.
# Idempotent: a rebuild happens only when the kernel version or this harness changes.
# Env: CACHE (default ~/.cache/tunneldigger), VM_KVER (force a kernel version).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
VMC=$CACHE/vm-x86_64
mkdir -p "$VMC"
exec 9>"$VMC/.lock"
flock 9   # parallel runs wait for one build instead of racing on the same files

# Modules loaded at boot (their modules.dep closure is added automatically).
# crc32c first: libcrc32c (needed by conntrack/nf_tables) has only a softdep on it, which
# busybox modprobe ignores; without it libcrc32c fails with ENOENT.
MODULES="
  crc32c_generic crc32c_intel
  virtio_pci 9pnet_virtio 9p overlay virtio_rng virtio_net
  veth l2tp_eth l2tp_netlink l2tp_core udp_tunnel ip6_udp_tunnel
  bridge dummy tun macvlan
  nf_conntrack nf_nat nf_tables nft_chain_nat nft_masq nft_nat nft_ct nft_reject_inet nft_compat
  x_tables xt_MASQUERADE xt_nat xt_conntrack iptable_nat iptable_filter
  sch_htb sch_tbf sch_sfq sch_ingress ifb cls_u32 cls_basic cls_fw cls_matchall act_mirred act_police act_gact
"

need() { command -v "$1" >/dev/null || { echo "vm-prep: '$1' missing; run 'make deps' (needs $2)" >&2; exit 1; }; }
need busybox busybox-static
need dpkg-deb dpkg
need apt-get apt
busybox depmod --help >/dev/null 2>&1 || { echo "vm-prep: /bin/busybox has no depmod applet; install busybox-static" >&2; exit 1; }

resolve_kver() {
  # linux-image-amd64 is a metapackage; its Depends names the real image package.
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

KVER=${VM_KVER:-}
if [ -z "$KVER" ]; then
  KVER=$(resolve_kver)
  if [ -z "$KVER" ]; then
    if [ -f "$VMC/current" ]; then
      KVER=$(cat "$VMC/current")   # offline / no apt lists: reuse what we have
    else
      echo "vm-prep: apt lists missing, running apt-get update" >&2
      apt-get update -qq
      KVER=$(resolve_kver)
    fi
  fi
fi
[ -n "$KVER" ] || { echo "vm-prep: cannot resolve the linux-image-amd64 kernel version; check apt sources" >&2; exit 1; }

K=$VMC/$KVER
# The initramfs depends on this script and on init; rebuild when they change.
KEY=$(cat "$HERE/prep.sh" "$HERE/init.sh" /bin/busybox | sha256sum | cut -c1-16)
if [ -f "$K/vmlinuz" ] && [ -f "$K/initramfs.cpio.gz" ] && [ "$(cat "$K/key" 2>/dev/null)" = "$KEY" ]; then
  echo "$KVER" > "$VMC/current"
  exit 0
fi

t0=$(date +%s.%N)
mkdir -p "$K"
if [ ! -f "$K/kx/lib/modules/$KVER/modules.dep" ] || [ ! -f "$K/kx/boot/vmlinuz-$KVER" ]; then
  echo "vm-prep: fetching linux-image-$KVER from Debian"
  rm -rf "$K/dl" "$K/kx"; mkdir -p "$K/dl"
  # Sandbox::User=root: _apt cannot write into root's cache dir (harmless warning otherwise).
  (cd "$K/dl" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$KVER")
  dpkg-deb -x "$K"/dl/linux-image-"$KVER"_*.deb "$K/kx.tmp"
  # The .deb ships no modules.dep (its postinst generates it).
  busybox depmod -b "$K/kx.tmp" "$KVER"
  mv "$K/kx.tmp" "$K/kx"
  rm -rf "$K/dl"
fi
cp "$K/kx/boot/vmlinuz-$KVER" "$K/vmlinuz"

# Module closure from modules.dep (module names use '_' where files may use '-').
MD=$K/kx/lib/modules/$KVER
declare -A want=()
for m in $MODULES; do
  line=$(grep -E "/${m//_/[_-]}\.ko:" "$MD/modules.dep" || true)
  if [ -z "$line" ]; then
    # Built into this kernel? Then nothing to copy.
    grep -qE "/${m//_/[_-]}\.ko$" "$MD/modules.builtin" && continue
    echo "vm-prep: module $m not found in $KVER" >&2; exit 1
  fi
  for f in ${line/:/}; do want[$f]=1; done
done

R=$K/root.tmp
rm -rf "$R"; mkdir -p "$R"/{bin,dev,proc,sys,run,tmp,hostro,host,overlay,etc} "$R/lib/modules/$KVER"
cp /bin/busybox "$R/bin/busybox"
for f in "${!want[@]}"; do
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$f")"
  cp "$MD/$f" "$R/lib/modules/$KVER/$f"
done
cp "$MD/modules.builtin" "$MD/modules.order" "$R/lib/modules/$KVER/"
busybox depmod -b "$R" "$KVER"
echo "$MODULES" | tr -s ' \n' '\n' | sed '/^$/d' > "$R/etc/vm-modules"
install -m 0755 "$HERE/init.sh" "$R/init"
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$K/initramfs.cpio.gz.tmp")
mv "$K/initramfs.cpio.gz.tmp" "$K/initramfs.cpio.gz"
rm -rf "$R"
echo "$KEY" > "$K/key"
echo "$KVER" > "$VMC/current"
t1=$(date +%s.%N)
printf 'vm-prep: kernel %s, %d modules, initramfs %s, %.1f s\n' "$KVER" "${#want[@]}" \
  "$(du -h "$K/initramfs.cpio.gz" | cut -f1)" "$(awk "BEGIN{print $t1 - $t0}")"
