#!/bin/bash
# Seccomp filter cost under a real profile (default: Docker's), estiba beside
# runc and crun in one run. Each runtime starts a container under the
# profile; its installed filters are read back (PTRACE_SECCOMP_GET_FILTER)
# and then:
#  1. counted: `bpf-cost` runs them on every x86_64 syscall number: which
#     the kernel's action cache answers without running any filter, and the
#     BPF instructions executed for the rest;
#  2. timed in one host process per run (`probe loop-under`): N calls before
#     and after installing that runtime's filters; the difference is the
#     filter's cost with nothing else of the runtime in the way. Runtimes
#     interleaved, median of 11;
#  3. timed inside the container each runtime starts (`probe loop`), with
#     and without the profile, median of 7, interleaved: the end-to-end
#     number, noisier (syscall cost here drifts by tens of ns between runs).
# Calls: getppid and write(-1) (allowed, kernel-cached), personality(
# 0xffffffff) (allowed by an argument rule: the filter runs), syslog(SIZE_BUFFER) (denied:
# the filter runs). Usage: integration/bench/seccomp.sh [N] [PROFILE]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000000}
profile=${2:-/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json}
calls=${CALLS:-"110 1:0xffffffffffffffff 135:0xffffffff 103:10"}
runtimes="estiba runc crun"
need=""
for p in runc crun; do command -v $p >/dev/null 2>&1 || need="$need $p"; done
[ -x /bin/busybox ] || need="$need busybox-static"
[ -f "$profile" ] || need="$need golang-github-docker-docker-dev"
if [ -n "$need" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; fi
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
# A copy that sleeps, to read the installed filters from.
cp -a "$work/filtered" "$work/sleeper"
sed -i 's|"/bin/probe", "loop", "[0-9]*", "NR", "ARG"|"/bin/sleep", "30"|' "$work/sleeper/config.json"
for b in plain filtered; do cp "$work/$b/config.json" "$work/$b/config.tmpl"; done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
export estiba work probe calls runtimes
export -f median
# crun 1.8 refuses this hybrid host unless cgroup2 is hidden from it.
unshare -m --propagation private bash -euo pipefail -c '
mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified
declare -A bin=([estiba]=$estiba [runc]=$(command -v runc) [crun]=$(command -v crun))
for r in $runtimes; do
    "${bin[$r]}" --root "$work/root-$r" run -d --bundle "$work/sleeper" "dump-$r" >/dev/null
    pid=$("${bin[$r]}" --root "$work/root-$r" state "dump-$r" | grep -o "\"pid\": *[0-9]*" | grep -o "[0-9]*$")
    mkdir -p "$work/bpf-$r"
    "$probe" filter-dump "$pid" "$work/bpf-$r" | tr -d "[]" | tr "," "+" | bc > "$work/$r-len"
    "${bin[$r]}" --root "$work/root-$r" delete --force "dump-$r"
done
for c in $calls; do
    nr=${c%%:*}; arg=${c#*:}; [ "$arg" = "$c" ] && arg=0
    for b in plain filtered; do
        sed "s|\"NR\", \"ARG\"|\"$nr\", \"$arg\"|" "$work/$b/config.tmpl" > "$work/$b/config.json"
        for i in $(seq 7); do
            for r in $runtimes; do
                "${bin[$r]}" --root "$work/root-$r" run --bundle "$work/$b" "s-$r-$b-$i" >> "$work/ctr-$r-$b-$nr"
            done
        done
    done
done
'
cost_calls=""
for c in $calls; do cost_calls="$cost_calls --call $c"; done
dumps=""
for r in $runtimes; do dumps="$dumps $r=$work/bpf-$r"; done
echo "profile: $profile"
echo "program length (instructions): $(for r in $runtimes; do printf '%s %s  ' $r "$(cat "$work/$r-len")"; done)"
echo
echo "1. counted (deterministic):"
target/release/bpf-cost $cost_calls $dumps
echo
# Overheads (after - before) per run; ratios of the medians.
ratio() { echo "$1 / $2" | bc -l; }
echo "2. the filters alone, in a host process: ns per call over no filter (median of 11 runs, each N=$n, fastest of 20 rounds)"
printf "%-24s %10s %10s %10s %12s %12s\n" call estiba runc crun estiba/runc estiba/crun
for c in $calls; do
    nr=${c%%:*}; arg=${c#*:}; [ "$arg" = "$c" ] && arg=0
    for i in $(seq 11); do
        for r in $runtimes; do
            "$probe" loop-under "$work/bpf-$r" "$n" "$nr" "$arg" | awk '{ print $2 - $1 }' >> "$work/host-$r-$nr"
        done
    done
    declare -A m
    for r in $runtimes; do m[$r]=$(median < "$work/host-$r-$nr"); done
    printf "%-24s %7.1f ns %7.1f ns %7.1f ns %12.2f %12.2f\n" "$nr($arg)" "${m[estiba]}" "${m[runc]}" "${m[crun]}" \
        "$(ratio "${m[estiba]}" "${m[runc]}")" "$(ratio "${m[estiba]}" "${m[crun]}")"
done
echo
echo "3. inside each runtime's container: ns per call with the profile, and over the same container without it (median of 7)"
printf "%-24s %22s %22s %22s %12s %12s\n" call estiba runc crun estiba/runc estiba/crun
for c in $calls; do
    nr=${c%%:*}; arg=${c#*:}; [ "$arg" = "$c" ] && arg=0
    declare -A o line
    for r in $runtimes; do
        f=$(median < "$work/ctr-$r-filtered-$nr"); p=$(median < "$work/ctr-$r-plain-$nr")
        o[$r]=$(echo "$f - $p" | bc -l)
        line[$r]=$(printf "%.1f (+%.1f) ns" "$f" "${o[$r]}")
    done
    printf "%-24s %22s %22s %22s %12.2f %12.2f\n" "$nr($arg)" "${line[estiba]}" "${line[runc]}" "${line[crun]}" \
        "$(ratio "${o[estiba]}" "${o[runc]}")" "$(ratio "${o[estiba]}" "${o[crun]}")"
done
