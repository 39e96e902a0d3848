#!/bin/bash
# pause-image.sh OUT.tar NAME: a pod sandbox image holding only /pause,
# integration/pause built static (it holds the pod's namespaces, reaps
# orphans and exits on SIGTERM).
set -euo pipefail
out=$1; name=$2
cd "$(dirname "$0")/../.."
host=$(rustc -vV | sed -n 's/host: //p')
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$PWD/target/pause" \
    cargo build -q --release --manifest-path integration/pause/Cargo.toml --target "$host"
r=$(mktemp -d /tmp/estiba-rootfs.XXXXXX)
trap 'rm -rf "$r"' EXIT
chmod 755 "$r"
mkdir -p "$r/proc" "$r/sys" "$r/dev"
cp "target/pause/$host/release/estiba-pause" "$r/pause"
integration/engines/image-tar.sh "$r" "$out" "$name" oci '["/pause"]'
