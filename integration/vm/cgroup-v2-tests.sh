#!/bin/bash
# Runs the cgroup, lifecycle, exec and rootless integration tests on cgroup v2: inside a
# qemu guest booted with Debian's kernel and cgroup_no_v1=all
# (integration/vm/run.sh). The test binaries are built here, on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p estiba
# The guests run the release (static) binary: under emulation the debug
# one takes twice as long to start, and a guest starts it thousands of times.
estiba=$(integration/build-release.sh)
bins=$(cargo test -q -p estiba-integration --test cgroups --test resources --test lifecycle --test exec --test devices --test rootless --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | grep '/deps/')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
# Every binary runs even when one fails; the guest's exit says whether any did.
cmd="set -e; cat /proc/self/cgroup; grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts; set +e; fails=0"
# Of the exec tests, the ones about joining and setting up the process: the
# terminal and load tests take minutes under emulation.
exec_tests="exec_flags_seen_from_inside exec_exit_codes_and_errors exec_joins_the_same_namespaces detach_pid_file_then_kill_and_ps exec_refused_when_paused_or_stopped exec_with_process_json"
for b in $bins; do
    case "$(basename "$b")" in exec-*) filter="$exec_tests";; *) filter="";; esac
    cmd="$cmd; echo \"== $(basename "$b")\"; ESTIBA_BIN=$estiba $b --test-threads 2 $filter || fails=1"
done
# Last, the cgroup checks of the spec conformance suite on v2 (the whole
# suite takes ~15 min under emulation; these read the v2 files).
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -q -p estiba-oci-conformance --target "$host"
suite="$PWD/target/$host/release/oci-conformance"
cmd="$cmd; echo '== oci-conformance'; $suite run --runtime $estiba --filter 'resources|cgroupsPath|unified|rejects' > /tmp/oc.tap; rc=\$?; cat /tmp/oc.tap; echo \"oci-conformance estiba cgroup-v2: \$(tail -n1 /tmp/oc.tap)\"; [ \$rc = 0 ] && [ \$fails = 0 ]"
# A guest that hangs must fail CI, not use it up (this takes ~3 min).
ESTIBA_VM_TIMEOUT=${ESTIBA_VM_TIMEOUT:-900} exec integration/vm/run.sh "$PWD" -- sh -c "$cmd"
