#!/bin/bash
# The systemd cgroup driver against a real systemd: the systemd tests (and
# the cgroup tests, which then see every v1 controller this host lacks) in
# qemu guests whose PID 1 is systemd, once on pure cgroup v2 and once on a
# v1 hybrid layout like this host's (integration/vm/run.sh with
# ESTIBA_VM_INIT=systemd). The test binaries are built here, on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p estiba
# The guests run the release (static) binary: under emulation the debug
# one takes twice as long to start, and a guest starts it thousands of times.
estiba=$(integration/build-release.sh)
bins=$(cargo test -q -p estiba-integration --test systemd --test cgroups --test resources --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | grep '/deps/')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
rc=0
for layout in v2 hybrid; do
    # Every binary runs even when one fails; the guest's exit says whether any did.
    cmd="test \"\$(cat /proc/1/comm)\" = systemd || exit 1; fails=0"
    for b in $bins; do
        cmd="$cmd; echo \"== $(basename "$b") (systemd, cgroup $layout)\"; ESTIBA_BIN=$estiba $b --test-threads 2 || fails=1"
    done
    cmd="$cmd; exit \$fails"
    # (~2.5 min each; a guest that hangs must fail CI, not use it up)
    ESTIBA_VM_TIMEOUT=${ESTIBA_VM_TIMEOUT:-600} ESTIBA_VM_INIT=systemd ESTIBA_VM_CGROUPS=$layout \
        integration/vm/run.sh "$PWD" -- sh -c "$cmd" || rc=1
done
exit $rc
