#!/bin/bash
# Builds what integration/vm/run.sh boots: Debian's own kernel (the package
# linux-image-amd64 points at) as an uncompressed ELF for qemu's PVH entry
# (no firmware, no in-guest decompression: seconds saved under TCG), and an
# initramfs with busybox-static, the virtio/9p/overlay modules and our init.
# Cached in $ESTIBA_VM_CACHE (default ~/.cache/estiba-vm); a no-op when fresh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${ESTIBA_VM_CACHE:-$HOME/.cache/estiba-vm}
mkdir -p "$cache"
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
pkg=${ESTIBA_VM_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)}
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
fi
stamp="$pkg $(cat "$here/init" "$0" | md5sum | cut -d' ' -f1)"
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] && [ -f "$cache/vmlinux" ] && [ -f "$cache/initrd" ]; then
    exit 0
fi
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$pkg" 2>/dev/null) || { apt-get update -qq; (cd "$work" && apt-get download -qq "$pkg"); }
dpkg-deb -x "$work"/*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")
mods="$work/k/lib/modules/$kver"
/bin/busybox depmod -b "$work/k" "$kver"
# The modules we need, dependencies first.
order=()
add() {
    local rel=$1 dep
    for o in "${order[@]:-}"; do [ "$o" = "$rel" ] && return 0; done
    for dep in $(grep -E "^$rel:" "$mods/modules.dep" | cut -d: -f2); do add "$dep"; done
    order+=("$rel")
}
for m in virtio_pci 9pnet_virtio 9p overlay virtio_blk; do
    rel=$(grep -E "/${m}\.ko(\.xz)?:" "$mods/modules.dep" | head -1 | cut -d: -f1)
    [ -n "$rel" ] || { echo "build.sh: module $m not in $kver" >&2; exit 1; }
    add "$rel"
done
# What CRIU's checks and dumps use (the checkpoint tests): nftables (its
# kernel-feature probe, with the crc32c it needs), conntrack over netlink
# (a network namespace's dump), veth and tun (its
# checks) and the socket diagnostics, where they are modules.
for m in crc32c_generic libcrc32c nf_tables nf_conntrack_netlink veth tun unix_diag inet_diag tcp_diag udp_diag netlink_diag packet_diag af_packet_diag; do
    rel=$(grep -E "/${m}\.ko(\.xz)?:" "$mods/modules.dep" | head -1 | cut -d: -f1) || true
    [ -z "$rel" ] || add "$rel"
done
root="$work/initrd"
mkdir -p "$root"/{bin,dev,proc,sys,mods,newroot,host,rw}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
for rel in "${order[@]}"; do
    b=$(basename "$rel")
    case "$b" in *.xz) xz -dc "$mods/$rel" > "$root/mods/${b%.xz}"; b=${b%.xz};; *) cp "$mods/$rel" "$root/mods/$b";; esac
    echo "$b" >> "$root/mods/order"
done
install -m 0755 "$here/init" "$root/init"
(cd "$root" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) > "$cache/initrd"
# vmlinuz carries an xz-compressed ELF: cut it out for the PVH entry.
vmlinuz="$work/k/boot/vmlinuz-$kver"
off=$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$vmlinuz" | head -1 | cut -d: -f1)
tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > "$cache/vmlinux" 2>/dev/null || true
[ "$(head -c 4 "$cache/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "build.sh: no ELF kernel in $vmlinuz" >&2; exit 1; }
echo "$stamp" > "$cache/stamp"
echo "build.sh: $pkg ($kver) in $cache" >&2
