#!/bin/bash
# busybox-image.sh OUT.tar [NAME [oci|docker]]: an image of Debian's
# busybox-static, built by hand (image-tar.sh says the formats).
set -euo pipefail
out=$1; name=${2:-localhost/busybox:latest}; format=${3:-oci}
r=$(mktemp -d /tmp/estiba-rootfs.XXXXXX)
trap 'rm -rf "$r"' EXIT
chmod 755 "$r"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev"
cp /bin/busybox "$r/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
echo "root:x:0:" > "$r/etc/group"
echo "nonexec" > "$r/bin/notexec"
chmod 644 "$r/bin/notexec"
"$(dirname "$0")/image-tar.sh" "$r" "$out" "$name" "$format" '["sh"]'
