#!/bin/bash
# Lifecycle benchmark: estiba, runc and crun side by side in one run, on the
# same busybox bundle running /bin/true. Reports medians and ratios for
#   run            (create+start+wait+delete in one command)
#   create         (alone; the previous one is deleted untimed)
#   create+start+delete (three commands, as engines drive a runtime)
#   exec /bin/true (in a running container of each runtime)
#   the CVE-2019-5736 protection's cost per create and per exec, each
#   runtime's own (as installed, minus from an already sealed copy)
#   peak RSS of `run` (GNU time's %M: the runtime and what it waited for)
# crun 1.8 refuses this host's hybrid cgroups, so everything runs in a
# private mount namespace where /sys/fs/cgroup/unified is covered by an
# empty tmpfs (the host's mounts are not touched). Usage:
#   integration/bench/lifecycle.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-50}
need=""
for p in hyperfine runc crun; do command -v $p >/dev/null 2>&1 || need="$need $p"; done
[ -x /usr/bin/time ] || need="$need time"
[ -x /bin/busybox ] || need="$need busybox-static"
if [ -n "$need" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; fi
estiba=$(integration/build-release.sh)
work=$(mktemp -d /tmp/estiba-bench.XXXXXX)
# Whatever happens, no container of the bench outlives it.
cleanup() {
    for r in estiba runc crun; do
        case $r in estiba) b=$estiba ;; *) b=$(command -v $r) ;; esac
        for id in $("$b" --root "$work/root-$r" list -q 2>/dev/null); do
            "$b" --root "$work/root-$r" delete --force "$id" >/dev/null 2>&1
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT
ESTIBA=$estiba integration/make-bundle.sh "$work/bundle" /bin/true
ESTIBA=$estiba integration/make-bundle.sh "$work/sleeper" /bin/sleep 1000
export estiba work runs
unshare -m --propagation private bash -euo pipefail -c '
mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified
b=$work/bundle
declare -A bin=([estiba]=$estiba [runc]=$(command -v runc) [crun]=$(command -v crun))
for r in estiba runc crun; do
    # Each runtime must work here before it is timed.
    "${bin[$r]}" --root "$work/root-$r" run --bundle "$b" check-$r >/dev/null || { echo "$r cannot run here" >&2; exit 1; }
done
run_cmds=(); csd_cmds=(); create_cmds=(); exec_cmds=()
for r in estiba runc crun; do
    x="${bin[$r]} --root $work/root-$r"
    run_cmds+=(-n "$r" "$x run --bundle $b bench-$r")
    csd_cmds+=(-n "$r" "$x create --bundle $b csd-$r && $x start csd-$r && $x delete --force csd-$r")
    # create alone: the one made by the previous round is deleted untimed.
    create_cmds+=(-p "sh -c \"$x delete --force cr-$r 2>/dev/null; true\"" -n "$r" "$x create --bundle $b cr-$r")
    exec_cmds+=(-n "$r" "$x exec sl-$r /bin/true")
    $x run -d --bundle $work/sleeper sl-$r </dev/null >/dev/null 2>&1
done
hyperfine -N -w 5 -r "$runs" --export-csv "$work/run.csv" "${run_cmds[@]}" >/dev/null
hyperfine -N -w 5 -r "$runs" -i --export-csv "$work/create.csv" "${create_cmds[@]}" >/dev/null
hyperfine -N -w 5 -r "$runs" --export-csv "$work/exec.csv" "${exec_cmds[@]}" >/dev/null
# The CVE-2019-5736 protection of each runtime: estiba re-executes
# itself through a private read-only bind mount; runc 1.1 copies itself
# into a sealed memfd in every `runc init`; crun 1.8 does the same copy at
# every start. All three skip their step when they already run from a fully
# sealed memfd, so each is timed as installed and from such a copy (held by
# a helper; executed through /proc/HELPER/fd/N), and the difference is what
# its protection costs per create and per exec.
files=("${bin[estiba]}" "${bin[runc]}" "${bin[crun]}")
coproc HOLD { python3 integration/bench/sealed-copies.py "${files[@]}"; }
declare -A sealed
for r in estiba runc crun; do read -r "sealed[$r]" <&"${HOLD[0]}"; done
prot_create=(); prot_exec=()
for r in estiba runc crun; do
    x="${bin[$r]} --root $work/root-$r"; y="${sealed[$r]} --root $work/root-$r"
    [ "$("${sealed[$r]}" --version | head -1)" = "$("${bin[$r]}" --version | head -1)" ] || { echo "$r: sealed copy does not run" >&2; exit 1; }
    prot_create+=(-p "sh -c \"$x delete --force pc-$r 2>/dev/null; true\"" -n "$r" "$x create --bundle $b pc-$r"
                  -p "sh -c \"$x delete --force pc-$r 2>/dev/null; true\"" -n "$r-sealed" "$y create --bundle $b pc-$r")
    prot_exec+=(-n "$r" "$x exec sl-$r /bin/true" -n "$r-sealed" "$y exec sl-$r /bin/true")
done
hyperfine -N -w 5 -r "$runs" -i --export-csv "$work/prot-create.csv" "${prot_create[@]}" >/dev/null
hyperfine -N -w 5 -r "$runs" --export-csv "$work/prot-exec.csv" "${prot_exec[@]}" >/dev/null
for r in estiba runc crun; do "${bin[$r]}" --root "$work/root-$r" delete --force pc-$r; done
eval "exec ${HOLD[1]}>&-"; wait
for r in estiba runc crun; do
    "${bin[$r]}" --root "$work/root-$r" delete --force cr-$r
    "${bin[$r]}" --root "$work/root-$r" delete --force sl-$r
done
hyperfine -w 5 -r "$runs" --export-csv "$work/csd.csv" "${csd_cmds[@]}" >/dev/null
for r in estiba runc crun; do
    for i in $(seq 15); do
        /usr/bin/time -f %M "${bin[$r]}" --root "$work/root-$r" run --bundle "$b" rss-$r 2>&1 >/dev/null | tail -1
    done | sort -n | awk -v r=$r "{ v[NR] = \$1 } END { print r, v[int((NR + 1) / 2)] }"
done > "$work/rss.txt"
'
report() {
    awk -F, -v title="$1" -v unit="$2" -v scale="$3" '
        NR > 1 { name[NR] = $1; med[$1] = $4 * scale }
        END {
            printf "%-22s", title
            for (i = 2; i in name; i++) printf "  %s %7.2f %s", name[i], med[name[i]], unit
            printf "  | estiba/runc %.2f  estiba/crun %.2f\n", med["estiba"] / med["runc"], med["estiba"] / med["crun"]
        }' "$4"
}
echo "median over $runs runs each, same bundle, same mount namespace"
report "run /bin/true" ms 1000 "$work/run.csv"
report "create" ms 1000 "$work/create.csv"
report "create+start+delete" ms 1000 "$work/csd.csv"
report "exec /bin/true" ms 1000 "$work/exec.csv"
awk '{ rss[$1] = $2 / 1024 } END {
    printf "%-22s  estiba %7.2f MiB  runc %7.2f MiB  crun %7.2f MiB  | estiba/runc %.2f  estiba/crun %.2f\n",
        "peak RSS of run", rss["estiba"], rss["runc"], rss["crun"], rss["estiba"] / rss["runc"], rss["estiba"] / rss["crun"] }' "$work/rss.txt"
for what in create exec; do
    awk -F, -v what="$what" 'NR > 1 { med[$1] = $4 * 1000 } END {
        for (i = 0; i < 3; i++) {
            r = i == 0 ? "estiba" : i == 1 ? "runc" : "crun"
            cost[r] = med[r] - med[r "-sealed"]
        }
        printf "%-22s  estiba %7.3f ms  runc %7.3f ms  crun %7.3f ms  | estiba/runc %.2f  estiba/crun %.2f\n",
            "protection, " what, cost["estiba"], cost["runc"], cost["crun"],
            cost["estiba"] / cost["runc"], cost["estiba"] / cost["crun"] }' "$work/prot-$what.csv"
done
