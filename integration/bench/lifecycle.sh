#!/bin/bash
# Lifecycle benchmark: estiba beside runc, every crun it has and youki if
# present, in one run, on the same busybox bundle. Medians, and estiba's
# ratio to each other runtime, for
#   run /bin/true       create+start+wait+delete in one command
#   create / start / delete   each alone (the rest of the lifecycle untimed)
#   create+start+delete three commands, as engines drive a runtime
#   exec /bin/true      in a running container of each runtime
#   state / list        with 20 containers of that runtime created
#   50 lifecycles       `run` 50 times, 8 in flight
#   peak RSS            of `run` and of `create` (GNU time's %M)
#   protection          the CVE-2019-5736 step's own cost per create and
#                       per exec: as installed, minus from a sealed copy
# Runtimes: estiba (integration/build-release.sh), Debian's runc and crun,
# `youki` if on PATH, and any other build named in BENCH_RUNTIMES as
# "name=/path name=/path" (say a crun built from source, outside the tree).
# crun 1.8 refuses this host's hybrid cgroups, so everything runs in a
# private mount namespace where /sys/fs/cgroup/unified is covered by an
# empty tmpfs (the host's mounts are not touched).
# Usage: integration/bench/lifecycle.sh [RUNS]   (CI runs it with 3: a smoke
# test of the benchmark itself, not a timing gate)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-30}
need=""
for p in hyperfine runc crun; do command -v $p >/dev/null 2>&1 || need="$need $p"; done
[ -x /usr/bin/time ] || need="$need time"
[ -x /bin/busybox ] || need="$need busybox-static"
if [ -n "$need" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; fi
estiba=$(integration/build-release.sh)
work=$(mktemp -d /tmp/estiba-bench.XXXXXX)
names=(estiba runc crun)
declare -A bin=([estiba]=$estiba [runc]=$(command -v runc) [crun]=$(command -v crun))
if command -v youki >/dev/null 2>&1; then names+=(youki); bin[youki]=$(command -v youki); fi
for kv in ${BENCH_RUNTIMES:-}; do names+=("${kv%%=*}"); bin[${kv%%=*}]=${kv#*=}; done
# Whatever happens, no container of the bench outlives it.
cleanup() {
    # Every step, whatever fails (a container of a runtime that hung).
    set +e
    for r in "${names[@]}"; do
        # (youki 0.7 prints its table for `list -q`: first column, no header.)
        for id in $("${bin[$r]}" --root "$work/root-$r" list -q 2>/dev/null | awk '$1 != "ID" { print $1 }'); do
            "${bin[$r]}" --root "$work/root-$r" delete --force "$id" >/dev/null 2>&1
        done
    done
    # The floor's cgroups, should one of its runs have died half-way.
    rmdir /sys/fs/cgroup/*/check-floor /sys/fs/cgroup/*/bench-floor /sys/fs/cgroup/*/par-floor-* 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
ESTIBA=$estiba integration/make-bundle.sh "$work/bundle" /bin/true
ESTIBA=$estiba integration/make-bundle.sh "$work/sleeper" /bin/sleep 1000
# The floor (floor.c: the bundle's kernel work alone), static as estiba is.
if ! gcc -O2 -static-pie -o "$work/floor" integration/bench/floor.c 2>"$work/floor.log"; then
    echo "floor: not built (gcc: $(head -1 "$work/floor.log")); the report has none" >&2
    rm -f "$work/floor"
fi
for r in "${names[@]}"; do echo "$r ${bin[$r]}"; done > "$work/runtimes"
export work runs
# Bounded as a whole: a runtime that hangs ends the benchmark, not CI.
timeout -k 10 1200 unshare -m --propagation private bash -euo pipefail integration/bench/timings.sh
python3 integration/bench/report.py "$work" "$runs"
