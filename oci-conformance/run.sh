#!/bin/sh
# The spec conformance suite: builds it and its static checker, runs it
# against estiba, then (when installed) against Debian's runc and crun, and
# prints the side-by-side table. The exit status is estiba's result.
set -u
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -q -p estiba-oci-conformance --target "$host" || exit 1
cargo build -q -p estiba || exit 1
suite="target/$host/release/oci-conformance"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$suite" run --runtime "$PWD/target/debug/estiba" --results "$out/estiba.tsv" | tee "$out/estiba.tap"
rc=$?
columns="estiba=$out/estiba.tsv"
for rt in runc crun; do
    path=$(command -v $rt) || { echo "skipped: $rt is not installed"; continue; }
    [ $rt = crun ] && path="$PWD/oci-conformance/crun-hybrid.sh"
    "$suite" run --runtime "$path" --results "$out/$rt.tsv" > "$out/$rt.tap"
    echo "$rt: $(tail -n1 "$out/$rt.tap")"
    columns="$columns $rt=$out/$rt.tsv"
done
echo
"$suite" table $columns
echo "oci-conformance estiba: $(tail -n1 "$out/estiba.tap")"
exit $rc
