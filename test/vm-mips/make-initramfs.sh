#!/bin/bash
# Builds the big-endian MIPS test initramfs ($CACHE/mips/initramfs.cpio.gz): static busybox
# (+ applet links), static iproute2 (ip, tc, genl), the soft-float musl loader and libc (so
# dynamically linked router binaries run), /init from test/vm-mips/init.sh.
# Rebuilt whenever one of its inputs is newer than the archive.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/mips/common.sh"
bb=$("$root/scripts/mips/build-busybox.sh")
ipd=$("$root/scripts/mips/build-iproute2.sh")
SYSROOT="$MIPS_CACHE/musl"
out="$MIPS_CACHE/initramfs.cpio.gz"
inputs=("$bb" "$ipd/ip" "$ipd/tc" "$ipd/genl" "$SYSROOT/lib/libc.so" "$here/init.sh" "$0")
if [ -f "$out" ]; then
  newer=0; for i in "${inputs[@]}"; do [ "$i" -nt "$out" ] && newer=1; done
  [ $newer -eq 0 ] && { echo "$out"; exit 0; }
fi
r="$MIPS_CACHE/initramfs-root"; rm -rf "$r"
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib,proc,sys,dev,run,tmp,host,etc,root,var}
ln -s ../run "$r/var/run"       # iproute2 keeps netns under /var/run/netns
cp "$bb" "$r/bin/busybox"
# applet links from the binary's own list; iproute2 replaces busybox's ip/tc
for a in $(qemu-mips-static -cpu 24Kc "$bb" --list-full); do
  case "$a" in */ip|*/tc|*/genl|bin/busybox) continue ;; esac
  ln -sf /bin/busybox "$r/$a"
done
cp "$ipd/ip" "$ipd/tc" "$ipd/genl" "$r/sbin/"
cp "$SYSROOT/lib/libc.so" "$r/lib/libc.so"
ln -s libc.so "$r/lib/ld-musl-mips-sf.so.1"
cp "$here/init.sh" "$r/init"; chmod 755 "$r/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -9) >"$out.tmp"
mv "$out.tmp" "$out"
log "initramfs: $(stat -c %s "$out") bytes"
echo "$out"
