#!/bin/bash
# Runs the cgroup and lifecycle integration tests on cgroup v2: inside a
# qemu guest booted with Debian's kernel and cgroup_no_v1=all
# (integration/vm/run.sh). The test binaries are built here, on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p estiba
bins=$(cargo test -q -p estiba-integration --test cgroups --test lifecycle --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | grep '/deps/')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
cmd="set -e; cat /proc/self/cgroup; grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts"
for b in $bins; do cmd="$cmd; echo \"== $(basename "$b")\"; $b --test-threads 2"; done
exec integration/vm/run.sh "$PWD" -- sh -c "$cmd"
