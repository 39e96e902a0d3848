#!/bin/sh
# make-bundle.sh DIR [ARGS...]: an OCI bundle in DIR whose rootfs is Debian's
# busybox-static, with `estiba spec`'s config (terminal off) running ARGS.
set -eu
dir=$1; shift
estiba=${ESTIBA:-$("$(dirname "$0")"/build-release.sh)}
busybox=$(command -v busybox || echo /bin/busybox)
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$dir/rootfs/bin/busybox" --list); do
    [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
rm -f "$dir/config.json"
"$estiba" spec --bundle "$dir"
# Turn off the terminal and set the program, without needing jq.
args=""
for a in "$@"; do
    esc=$(printf '%s' "$a" | sed 's/\\/\\\\/g; s/"/\\"/g')
    args="$args${args:+, }\"$esc\""
done
ARGS="$args" awk '
    /"terminal": true/ { sub(/true/, "false") }
    /"args": \[/ { print "    \"args\": [" ENVIRON["ARGS"] "],"; skip = 1; next }
    skip && /\]/ { skip = 0; next }
    skip { next }
    { print }
' "$dir/config.json" > "$dir/config.json.new"
mv "$dir/config.json.new" "$dir/config.json"
