#!/bin/bash
# Prepares the x86_64 test VM: Debian's amd64 kernel (downloaded, never installed on the host)
# and a busybox initramfs carrying the module closure the scenarios need.
# Output: $CACHE/vm-x86_64/<kver>/{vmlinuz,initramfs.cpio.gz}; $CACHE/vm-x86_64/current names <kver>.
# Idempotent: a rebuild happens only when the kernel version or this harness changes.
# Env: CACHE (default ~/.cache/tunneldigger), VM_KVER (force a kernel version),
#      VM_KSUITE (take the kernel from that Debian suite instead, e.g. sid, trixie-backports,
#      experimental, bookworm-security: fetched through a private apt state in
#      $CACHE/vm-x86_64/<suite>/apt, never /etc/apt; kernels of a suite live in
#      $CACHE/vm-x86_64/<suite>/<kver>/, named by $CACHE/vm-x86_64/<suite>/current).
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
need xz xz-utils
busybox depmod --help >/dev/null 2>&1 || { echo "vm-prep: /bin/busybox has no depmod applet; install busybox-static" >&2; exit 1; }

KSUITE=${VM_KSUITE:-}
APT=(apt-get) APTC=(apt-cache) KROOT=$VMC
if [ -n "$KSUITE" ]; then
  case $KSUITE in
    *[!a-z0-9-]* | -*) echo "vm-prep: VM_KSUITE='$KSUITE' is not a Debian suite name (e.g. sid, trixie-backports)" >&2; exit 2 ;;
  esac
  # A private apt state for that one suite: the host's /etc/apt and its lists stay untouched.
  # apt checks the suite's InRelease signature against Debian's keyring and each .deb's SHA256
  # against the signed Packages index.
  KROOT=$VMC/$KSUITE
  SA=$KROOT/apt
  mkdir -p "$SA/state/lists/partial" "$SA/cache/archives/partial"
  touch "$SA/state/status"
  mirror=http://deb.debian.org/debian
  case $KSUITE in *-security) mirror=http://deb.debian.org/debian-security ;; esac
  echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $KSUITE main" \
    > "$SA/sources.list"
  SOPTS=(-o "Dir::State=$SA/state" -o "Dir::State::status=$SA/state/status" -o "Dir::Cache=$SA/cache"
    -o "Dir::Etc::SourceList=$SA/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o Acquire::Languages=none -o APT::Update::Post-Invoke-Success::= -o Debug::NoLocking=1
    -o APT::Sandbox::User=root)
  APT=(apt-get "${SOPTS[@]}") APTC=(apt-cache "${SOPTS[@]}")
fi
apt_update() {
  echo "vm-prep: apt lists of ${KSUITE:-the host apt sources} missing, running apt-get update" >&2
  "${APT[@]}" update -qq
}
suite_lists_missing() { [ -n "$KSUITE" ] && ! ls "$SA/state/lists/"*_Packages* >/dev/null 2>&1; }

resolve_kver() {
  # linux-image-amd64 is a metapackage; its Depends names the real image package.
  "${APTC[@]}" depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1 || true
}

KVER=${VM_KVER:-}
if [ -z "$KVER" ]; then
  KVER=$(resolve_kver)
  if [ -z "$KVER" ]; then
    if [ -f "$KROOT/current" ]; then
      KVER=$(cat "$KROOT/current")   # offline / no apt lists: reuse what we have
    else
      apt_update
      KVER=$(resolve_kver)
    fi
  fi
fi
[ -n "$KVER" ] || { echo "vm-prep: cannot resolve the linux-image-amd64 kernel version${KSUITE:+ in $KSUITE}; check apt sources" >&2; exit 1; }

K=$KROOT/$KVER
# The initramfs depends on this script and on init; rebuild when they change.
KEY=$(cat "$HERE/prep.sh" "$HERE/init.sh" /bin/busybox | sha256sum | cut -c1-16)
if [ -f "$K/vmlinuz" ] && [ -f "$K/initramfs.cpio.gz" ] && [ "$(cat "$K/key" 2>/dev/null)" = "$KEY" ]; then
  echo "$KVER" > "$KROOT/current"
  exit 0
fi

# Where the extracted package keeps the kernel: /boot/vmlinuz-<kver> (up to 6.18), or, since Debian
# split linux-image into linux-binary/-modules/-base (6.19), /usr/lib/modules/<kver>/vmlinuz.
find_vmlinuz() {
  local f
  for f in "$1/boot/vmlinuz-$KVER" "$1/usr/lib/modules/$KVER/vmlinuz"; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

t0=$(date +%s.%N)
mkdir -p "$K"
if [ ! -f "$K/kx/lib/modules/$KVER/modules.dep" ] || ! find_vmlinuz "$K/kx" >/dev/null; then
  echo "vm-prep: fetching linux-image-$KVER from Debian${KSUITE:+ $KSUITE}"
  suite_lists_missing && apt_update
  rm -rf "$K/dl" "$K/kx" "$K/kx.tmp"; mkdir -p "$K/dl"
  # linux-image-<kver> itself, or (6.19 on) the parts it depends on.
  deps=$("${APTC[@]}" depends "linux-image-$KVER" 2>/dev/null | awk -v k="$KVER" '
    $1 == "Depends:" && ($2 == "linux-binary-" k || $2 == "linux-modules-" k || $2 == "linux-base-" k) { print $2 }' |
    sort -u | tr '\n' ' ')
  pkgs="linux-image-$KVER $deps"
  # Sandbox::User=root: _apt cannot write into root's cache dir (harmless warning otherwise).
  # shellcheck disable=SC2086
  (cd "$K/dl" && "${APT[@]}" download -q -o APT::Sandbox::User=root $pkgs)
  for p in $pkgs; do
    want_sha=$("${APTC[@]}" show --no-all-versions "$p" | sed -n 's/^SHA256: //p' | head -n1)
    deb=$(ls "$K"/dl/"$p"_*.deb)
    [ -n "$want_sha" ] && [ "$(sha256sum < "$deb" | cut -d' ' -f1)" = "$want_sha" ] ||
      { echo "vm-prep: $deb does not match the SHA256 of the index ($want_sha); not used" >&2; exit 1; }
    dpkg-deb -x "$deb" "$K/kx.tmp"
  done
  # usr-merged layout: give depmod and the code below the /lib/modules path they expect.
  if [ ! -e "$K/kx.tmp/lib" ] && [ -d "$K/kx.tmp/usr/lib/modules/$KVER" ]; then ln -s usr/lib "$K/kx.tmp/lib"; fi
  find_vmlinuz "$K/kx.tmp" >/dev/null || { echo "vm-prep: no vmlinuz in $pkgs" >&2; exit 1; }
  # The .deb ships no modules.dep (its postinst generates it).
  busybox depmod -b "$K/kx.tmp" "$KVER"
  mv "$K/kx.tmp" "$K/kx"
  rm -rf "$K/dl"
fi
cp "$(find_vmlinuz "$K/kx")" "$K/vmlinuz"

# Module closure from modules.dep (module names use '_' where files may use '-'; files may be
# compressed: .ko.xz on Debian's 6.12+ kernels).
MD=$K/kx/lib/modules/$KVER
declare -A want=()
load=""
for m in $MODULES; do
  line=$(grep -E "/${m//_/[_-]}\.ko(\.(xz|zst|gz))?:" "$MD/modules.dep" || true)
  if [ -z "$line" ]; then
    # Built into this kernel? Then nothing to copy.
    grep -qE "/${m//_/[_-]}\.ko$" "$MD/modules.builtin" && continue
    # crc32c_*: only there for libcrc32c's softdep; kernels from 6.14 on have neither.
    case $m in crc32c_*) continue ;; esac
    echo "vm-prep: module $m not found in $KVER" >&2; exit 1
  fi
  load="$load $m"
  for f in ${line/:/}; do want[$f]=1; done
done

R=$K/root.tmp
rm -rf "$R"; mkdir -p "$R"/{bin,dev,proc,sys,run,tmp,hostro,host,overlay,etc} "$R/lib/modules/$KVER"
cp /bin/busybox "$R/bin/busybox"
for f in "${!want[@]}"; do
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$f")"
  # Stored uncompressed: busybox modprobe/insmod need not know the compression.
  case $f in
    *.ko.xz) xz -dc "$MD/$f" > "$R/lib/modules/$KVER/${f%.xz}" ;;
    *.ko.zst) zstd -qdc "$MD/$f" > "$R/lib/modules/$KVER/${f%.zst}" ;;
    *.ko.gz) gzip -dc "$MD/$f" > "$R/lib/modules/$KVER/${f%.gz}" ;;
    *) cp "$MD/$f" "$R/lib/modules/$KVER/$f" ;;
  esac
done
cp "$MD/modules.builtin" "$MD/modules.order" "$R/lib/modules/$KVER/"
busybox depmod -b "$R" "$KVER"
echo "$load" | tr -s ' \n' '\n' | sed '/^$/d' > "$R/etc/vm-modules"
install -m 0755 "$HERE/init.sh" "$R/init"
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$K/initramfs.cpio.gz.tmp")
mv "$K/initramfs.cpio.gz.tmp" "$K/initramfs.cpio.gz"
rm -rf "$R"
echo "$KEY" > "$K/key"
echo "$KVER" > "$KROOT/current"
t1=$(date +%s.%N)
printf 'vm-prep: kernel %s, %d modules, initramfs %s, %.1f s\n' "$KVER" "${#want[@]}" \
  "$(du -h "$K/initramfs.cpio.gz" | cut -f1)" "$(awk "BEGIN{print $t1 - $t0}")"
