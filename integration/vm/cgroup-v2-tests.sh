#!/bin/bash
# Runs the cgroup, lifecycle and exec integration tests on cgroup v2: inside a
# qemu guest booted with Debian's kernel and cgroup_no_v1=all
# (integration/vm/run.sh). The test binaries are built here, on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p estiba
bins=$(cargo test -q -p estiba-integration --test cgroups --test lifecycle --test exec --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | grep '/deps/')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
cmd="set -e; cat /proc/self/cgroup; grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts"
# Of the exec tests, the ones about joining and setting up the process: the
# terminal and load tests take minutes under emulation.
exec_tests="exec_flags_seen_from_inside exec_exit_codes_and_errors exec_joins_the_same_namespaces detach_pid_file_then_kill_and_ps exec_refused_when_paused_or_stopped exec_with_process_json"
for b in $bins; do
    case "$(basename "$b")" in exec-*) filter="$exec_tests";; *) filter="";; esac
    cmd="$cmd; echo \"== $(basename "$b")\"; $b --test-threads 2 $filter"
done
exec integration/vm/run.sh "$PWD" -- sh -c "$cmd"
