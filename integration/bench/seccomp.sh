#!/bin/bash
# Seccomp filter cost: the same syscall-heavy loop (N getppid calls, timed
# inside the container by our probe) under Docker's default profile with
# estiba, runc and crun side by side, plus the loop without any filter, and
# the length of the installed program for each runtime (read with
# PTRACE_SECCOMP_GET_FILTER). Usage: integration/bench/seccomp.sh [N] [PROFILE]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000000}
profile=${2:-/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json}
# getppid, and write(-1, 0, 0): a call near the end of Docker's allow list.
calls=${CALLS:-"110 1:0xffffffffffffffff"}
need=""
for p in runc crun; do command -v $p >/dev/null 2>&1 || need="$need $p"; done
[ -x /bin/busybox ] || need="$need busybox-static"
[ -f "$profile" ] || need="$need golang-github-docker-docker-dev"
if [ -n "$need" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; fi
estiba=$(integration/build-release.sh)
cargo build --release -q -p estiba-integration --bins
probe=$PWD/target/release/probe
work=$(mktemp -d /tmp/estiba-bench-seccomp.XXXXXX)
trap 'rm -rf "$work"' EXIT
for b in plain filtered; do
    ESTIBA=$estiba integration/make-bundle.sh "$work/$b" /bin/probe loop "$n" NR ARG
    cp "$probe" "$work/$b/rootfs/bin/probe"
    for lib in $(ldd "$probe" | grep -o '/[^ ]*'); do
        mkdir -p "$work/$b/rootfs$(dirname "$lib")"; cp "$lib" "$work/$b/rootfs$lib"
    done
done
target/release/seccomp-profile "$profile" "$work/filtered/config.json"
# A copy that sleeps, to read the installed filter's length.
cp -a "$work/filtered" "$work/sleeper"
sed -i 's|"/bin/probe", "loop", "[0-9]*", "NR", "ARG"|"/bin/sleep", "30"|' "$work/sleeper/config.json"
export estiba work probe calls
unshare -m --propagation private bash -euo pipefail -c '
mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified
declare -A bin=([estiba]=$estiba [runc]=$(command -v runc) [crun]=$(command -v crun))
median() { sort -n | awk "{ v[NR] = \$1 } END { print v[int((NR + 1) / 2)] }"; }
for r in estiba runc crun; do
    for c in $calls; do
        nr=${c%%:*}; arg=${c#*:}; [ "$arg" = "$c" ] && arg=0
        for b in plain filtered; do
            [ -f "$work/$b/config.tmpl" ] || cp "$work/$b/config.json" "$work/$b/config.tmpl"
            sed "s|\"NR\", \"ARG\"|\"$nr\", \"$arg\"|" "$work/$b/config.tmpl" > "$work/$b/config.json"
            for i in 1 2 3 4 5; do "${bin[$r]}" --root "$work/root-$r" run --bundle "$work/$b" "s-$r-$b-$i"; done | median > "$work/$r-$b-$nr"
        done
    done
    "${bin[$r]}" --root "$work/root-$r" run -d --bundle "$work/sleeper" "len-$r" >/dev/null
    pid=$("${bin[$r]}" --root "$work/root-$r" state "len-$r" | grep -o "\"pid\": *[0-9]*" | grep -o "[0-9]*$")
    "$probe" filter-len "$pid" | awk "{ print \$2 }" > "$work/$r-len"
    "${bin[$r]}" --root "$work/root-$r" delete --force "len-$r"
done
'
for c in $calls; do
    nr=${c%%:*}
    echo "syscall $nr x $n under $(basename "$profile") (median of 5 runs; ns per call, measured inside the container)"
    printf "%-8s %12s %12s %12s %14s\n" runtime "no filter" "filtered" "overhead" "instructions"
    for r in estiba runc crun; do
        plain=$(cat "$work/$r-plain-$nr"); filt=$(cat "$work/$r-filtered-$nr")
        echo "$filt - $plain" | bc -l > "$work/$r-over-$nr"
        printf "%-8s %9.1f ns %9.1f ns %9.1f ns %14s\n" $r "$plain" "$filt" "$(cat "$work/$r-over-$nr")" "$(cat "$work/$r-len")"
    done
    printf "filter overhead: estiba/runc %.2f  estiba/crun %.2f\n\n" \
        "$(echo "$(cat "$work/estiba-over-$nr") / $(cat "$work/runc-over-$nr")" | bc -l)" \
        "$(echo "$(cat "$work/estiba-over-$nr") / $(cat "$work/crun-over-$nr")" | bc -l)"
done
