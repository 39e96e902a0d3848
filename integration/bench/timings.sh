#!/bin/bash
# The timed part of lifecycle.sh, run in its private mount namespace:
# one hyperfine table per path, one column per runtime, in $work/*.csv;
# peak RSS in $work/rss-*.txt. $work/runtimes lists "name binary" lines.
set -euo pipefail
mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified
b=$work/bundle
declare -A bin
names=()
while read -r name path; do names+=("$name"); bin[$name]=$path; done < "$work/runtimes"
# Each path is timed in rounds, every runtime once a round: this machine's
# speed drifts by a third within a minute, and a runtime timed only in the
# first half of a path would be timed in other weather than the next one.
rounds=$((runs >= 10 ? 5 : 1))
per=$(((runs + rounds - 1) / rounds))
warm=$((runs < 5 ? 1 : 2))
# hf NAME [hyperfine arguments]: the rounds' times in $work/NAME.<k>.json.
hf() {
    local name=$1
    shift
    for ((k = 0; k < rounds; k++)); do
        hyperfine -N -w "$warm" -r "$per" --export-json "$work/$name.$k.json" "$@" >/dev/null
    done
}
x() { echo "${bin[$1]} --root $work/root-$1"; }
for r in "${names[@]}"; do
    # Each runtime must work here before it is timed.
    $(x "$r") run --bundle "$b" check-$r >/dev/null || { echo "$r cannot run here" >&2; exit 1; }
done
run=(); create=(); start=(); delete=(); csd=(); exec=(); state=(); list=(); par=()
# The floor, beside the runtimes in the run and parallel rows only.
if [ -x "$work/floor" ] && "$work/floor" "$b/rootfs" check-floor >/dev/null; then
    run+=(-n floor "$work/floor $b/rootfs bench-floor")
    par+=(-n floor "sh -c 'seq 50 | xargs -P8 -I{} $work/floor $b/rootfs par-floor-{} >/dev/null'")
elif [ -x "$work/floor" ]; then
    echo "floor: cannot run here; not timed" >&2
fi
cold_create=(); cold_exec=()
for r in "${names[@]}"; do
    c=$(x "$r")
    run+=(-n "$r" "$c run --bundle $b bench-$r")
    # Each alone, the rest of the lifecycle in hyperfine's untimed prepare.
    create+=(-p "sh -c '$c delete --force cr-$r 2>/dev/null; true'" -n "$r" "$c create --bundle $b cr-$r")
    start+=(-p "sh -c '$c delete --force st-$r 2>/dev/null; $c create --bundle $b st-$r'" -n "$r" "$c start st-$r")
    # (At most 500 polls for /bin/true to end; delete then fails loudly.)
    delete+=(-p "sh -c '$c create --bundle $b dl-$r && $c start dl-$r && for i in \$(seq 500); do $c state dl-$r | grep -q stopped && break; done'" -n "$r" "$c delete dl-$r")
    csd+=(-n "$r" "sh -c '$c create --bundle $b csd-$r && $c start csd-$r && $c delete --force csd-$r'")
    exec+=(-n "$r" "$c exec sl-$r /bin/true")
    # Alone, as a user's single command: 0.3 s after the last one. A move
    # of a process into a cgroup by pid waits for an RCU grace period unless
    # another move came within one, which back-to-back runs hide.
    cold_create+=(-p "sh -c '$c delete --force cc-$r 2>/dev/null; sleep 0.3'" -n "$r" "$c create --bundle $b cc-$r")
    cold_exec+=(-p "sleep 0.3" -n "$r" "$c exec sl-$r /bin/true")
    state+=(-n "$r" "$c state many-$r-1")
    list+=(-n "$r" "$c list")
    par+=(-n "$r" "sh -c 'seq 50 | xargs -P8 -I{} $c run --bundle $b par-$r-{} >/dev/null'")
    $c run -d --bundle "$work/sleeper" sl-$r </dev/null >/dev/null 2>&1
done
hf run "${run[@]}"
hf create -i "${create[@]}"
hf start "${start[@]}"
hf delete "${delete[@]}"
hf csd "${csd[@]}"
hf exec "${exec[@]}"
hf cold-create -i "${cold_create[@]}"
hf cold-exec "${cold_exec[@]}"
# In rounds, one batch of each runtime a round (the machine's speed drifts
# as for the other paths), each batch bounded: a runtime whose parallel runs
# hang (youki 0.7 here: a `run` never reaps its /bin/true) gets no number.
par_runs=$((runs / 4 < 3 ? 3 : runs / 4))
declare -A par_hung=()
par_batch() { # K R COMMAND: one timed batch, in $work/par.K-R.json unless K is "warm"
    local out=$work/par.$1-$2.json
    [ "$1" = warm ] && out=$work/par-warm.json
    hyperfine -N -r 1 --export-json "$out" -n "$2" "timeout 60 $3" >/dev/null 2>&1 && return
    echo "$2: 50 parallel runs failed or did not finish within 60 s" >&2
    pkill -9 -f "par-$2-" || true
    rm -f "$out"
    par_hung[$2]=1
}
for k in warm $(seq 0 $((par_runs - 1))); do
    for ((i = 0; i < ${#par[@]}; i += 3)); do
        r=${par[i + 1]}
        if [ -z "${par_hung[$r]:-}" ]; then par_batch "$k" "$r" "${par[i + 2]}"; fi
    done
done
rm -f "$work/par-warm.json"
for r in "${names[@]}"; do
    c=$(x "$r")
    $c delete --force cr-$r
    $c delete --force st-$r
    $c delete --force cc-$r
    for i in $(seq 20); do $c create --bundle "$b" many-$r-$i </dev/null >/dev/null 2>&1; done
done
hf state "${state[@]}"
hf list "${list[@]}"
for r in "${names[@]}"; do
    c=$(x "$r")
    for i in $(seq 20); do $c delete --force many-$r-$i; done
done
# Peak RSS (the largest of the command and what it waited for), median of 15.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for r in "${names[@]}"; do
    c=$(x "$r")
    echo "$r $(for i in $(seq 15); do /usr/bin/time -f %M $c run --bundle "$b" rss-$r 2>&1 >/dev/null | tail -1; done | median)"
done > "$work/rss-run.txt"
for r in "${names[@]}"; do
    c=$(x "$r")
    # The init keeps create's stdio: nothing of it may be a pipe we read.
    echo "$r $(for i in $(seq 15); do
        /usr/bin/time -o "$work/t" -f %M $c create --bundle "$b" rsc-$r </dev/null >/dev/null 2>&1
        tail -1 "$work/t"
        $c delete --force rsc-$r
    done | median)"
done > "$work/rss-create.txt"
# The CVE-2019-5736 protection of each runtime: estiba moves its running
# image onto a private read-only bind mount of its binary (a re-exec through
# it where the kernel refuses); runc 1.1 copies itself into a sealed memfd in
# every `runc init`; crun copies itself at every start. All skip their step
# when they already run from a fully sealed memfd, so each is timed as
# installed and from such a copy (held by a helper; executed through
# /proc/HELPER/fd/N): the difference is what the protection costs.
files=()
for r in "${names[@]}"; do files+=("${bin[$r]}"); done
coproc HOLD { python3 integration/bench/sealed-copies.py "${files[@]}"; }
declare -A sealed
for r in "${names[@]}"; do read -r "sealed[$r]" <&"${HOLD[0]}"; done
pc=(); pe=()
for r in "${names[@]}"; do
    c=$(x "$r"); s="${sealed[$r]} --root $work/root-$r"
    [ "$(${sealed[$r]} --version | head -1)" = "$(${bin[$r]} --version | head -1)" ] || { echo "$r: sealed copy does not run" >&2; exit 1; }
    pc+=(-p "sh -c '$c delete --force pc-$r 2>/dev/null; true'" -n "$r" "$c create --bundle $b pc-$r"
         -p "sh -c '$c delete --force pc-$r 2>/dev/null; true'" -n "$r-sealed" "$s create --bundle $b pc-$r")
    pe+=(-n "$r" "$c exec sl-$r /bin/true" -n "$r-sealed" "$s exec sl-$r /bin/true")
done
hf prot-create -i "${pc[@]}"
hf prot-exec "${pe[@]}"
eval "exec ${HOLD[1]}>&-"
wait
for r in "${names[@]}"; do
    c=$(x "$r")
    $c delete --force pc-$r
    $c delete --force sl-$r
done
