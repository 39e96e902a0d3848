#!/bin/bash
# containerd (Debian's 1.6, with its runc shim) running containers through
# estiba: `ctr run --runc-binary`. containerd is started privately (own
# root, state and socket in a temp dir; its CRI plugin off) and removed
# afterwards. Every check looks at output and state, not exit codes alone.
# Ends with "containerd: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. integration/engines/lib.sh
engine_setup containerd containerd ctd
cat > "$t/config.toml" <<TOML
version = 2
root = "$t/root"
state = "$t/state"
[grpc]
  address = "$t/sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable = true
TOML
containerd --config "$t/config.toml" > "$t/containerd.log" 2>&1 &
cpid=$!
# Every ctr call is bounded: a hang must fail the check, not stall CI.
C="$bounded 60 ctr --address $t/sock"
ns=estiba-test
CN="$C -n $ns"
cleanup() {
    for id in $($CN task ls -q 2>/dev/null); do $CN task kill -s SIGKILL "$id" >/dev/null 2>&1; $CN task delete -f "$id" >/dev/null 2>&1; done
    for id in $($CN container ls -q 2>/dev/null); do $CN container delete "$id" >/dev/null 2>&1; done
    kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
    grep -q " $t" /proc/self/mountinfo && awk -v t="$t" '$5 ~ "^"t { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$t"
    # The namespace's parent cgroup (containerd's cgroupsPath is /<ns>/<id>)
    # and runtime root are containerd's to keep; the test removes them.
    find /sys/fs/cgroup -maxdepth 2 -type d -name "$ns" -exec rmdir {} \; 2>/dev/null
    rmdir "/run/containerd/runc/$ns" 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$t/sock" ] && break; sleep 0.1; done
integration/engines/busybox-image.sh "$t/busybox.tar"
$CN images import "$t/busybox.tar" >/dev/null || { echo "containerd: image import failed"; exit 1; }
img=localhost/busybox:latest
run() { $CN run --rm --runc-binary "$estiba" "$@"; }

run "$img" r1 sh -c 'echo out; echo err >&2; exit 3' > "$t/out" 2> "$t/err"; rc=$?
check "run: exit code propagated" test $rc = 3
check "run: stdout and stderr kept apart" sh -c "grep -qx out $t/out && grep -qx err $t/err && ! grep -q err $t/out"
# ctr 1.6 forwards stdin but never closes it (no -i flag; runc behaves the
# same), so the process reads one line instead of waiting for EOF.
check "run: stdin reaches the process" sh -c "echo piped | $C -n $ns run --rm --runc-binary $estiba $img r2 head -n1 | grep -qx piped"
check "run: env and cwd" sh -c "$C -n $ns run --rm --runc-binary $estiba --env FOO=bar --cwd /tmp $img r3 sh -c 'echo \$FOO \$(pwd)' | grep -qx 'bar /tmp'"
check "run: pid 1" sh -c "$C -n $ns run --rm --runc-binary $estiba $img r4 sh -c 'echo \$\$' | grep -qx 1"
run "$img" r5 no-such-program > /dev/null 2> "$t/missing"; rc=$?
check "run: a missing executable fails with runc's words" sh -c "test $rc != 0 && grep -q 'executable file not found' $t/missing"
run "$img" r6 /bin/notexec > /dev/null 2> "$t/notexec"; rc=$?
check "run: a non-executable file fails with permission denied" sh -c "test $rc != 0 && grep -q 'permission denied' $t/notexec"
in_pty 'hello\n' "$CN run --rm -t --runc-binary $estiba $img it1 sh -c 'read x; echo got:\$x; tty'" > "$t/it.out" 2>&1
check "run -t: an interactive session under a pty" shows "$t/it.out" got:hello '/dev/pts/[0-9]+'
check "run: read-only rootfs" sh -c "$C -n $ns run --rm --runc-binary $estiba --read-only $img r7 sh -c 'touch /x 2>/dev/null && echo rw || echo ro' | grep -qx ro"

$CN run -d --runc-binary "$estiba" --memory-limit 67108864 --seccomp "$img" d1 sh -c 'trap "exit 7" TERM; while true; do sleep 0.1; done' >/dev/null
check "detached: running" sh -c "$CN task ls | grep -q 'd1 .*RUNNING'"
check "exec: output" sh -c "$CN task exec --exec-id e1 d1 echo exec-ok | grep -qx exec-ok"
check "exec: same pid namespace (pid 1 is the init)" sh -c "$CN task exec --exec-id e2 d1 cat /proc/1/cmdline | tr '\\0' ' ' | grep -q 'sh -c trap'"
$CN task exec --exec-id e3 d1 sh -c 'exit 5'; rc=$?
check "exec: exit code" test $rc = 5
in_pty '' "$CN task exec -t --exec-id e5 d1 tty" > "$t/ite.out" 2>&1
check "exec -t: a terminal" shows "$t/ite.out" '/dev/pts/[0-9]+'
check "exec: seccomp profile applied" sh -c "$CN task exec --exec-id e4 d1 grep -q 'Seccomp:.2' /proc/self/status"
check "ps: lists the init" sh -c "$CN task ps d1 | grep -q \$($CN task ls | awk '\$1==\"d1\" {print \$2}')"
pid=$($CN task ls | awk '$1=="d1" {print $2}')
cg=$(awk -F: '$2=="memory" {print $3}' /proc/$pid/cgroup)
check "memory limit in the container's cgroup" sh -c "test \$(cat /sys/fs/cgroup/memory$cg/memory.limit_in_bytes) = 67108864"
$CN task pause d1
check "pause: PAUSED and frozen" sh -c "$CN task ls | grep -q 'd1 .*PAUSED' && grep -qx FROZEN /sys/fs/cgroup/freezer$cg/freezer.state"
$CN task resume d1
check "resume: RUNNING" sh -c "$CN task ls | grep -q 'd1 .*RUNNING'"
check "metrics: memory usage reported" sh -c "$CN task metrics d1 | grep -q memory.usage_in_bytes"
$CN task kill -s SIGTERM d1
for _ in $(seq 50); do $CN task ls | grep -q 'd1 .*STOPPED' && break; sleep 0.1; done
$CN task delete d1 > "$t/d1.delete" 2>&1
check "stop: SIGTERM trapped inside, its exit code reported" grep -q "exit status 7\|code 7\|: 7" "$t/d1.delete" "$t/containerd.log"
$CN container delete d1 >/dev/null 2>&1
$CN run -d --runc-binary "$estiba" "$img" d2 sh -c 'sleep 1000 & sleep 1000' >/dev/null
$CN task kill --all -s SIGKILL d2
for _ in $(seq 50); do $CN task ls | grep -q 'd2 .*STOPPED' && break; sleep 0.1; done
check "kill --all: stopped" sh -c "$CN task ls | grep -q 'd2 .*STOPPED'"
$CN task delete d2 >/dev/null 2>&1; $CN container delete d2 >/dev/null 2>&1
nothing_left() {
    local ok=0
    checkout_unchanged || ok=1
    none grep " $t/.*/rootfs " /proc/self/mountinfo || ok=1
    none $CN task ls -q || ok=1
    none ls "$t/state/io.containerd.runtime.v2.task/$ns" || ok=1
    none ls "/run/containerd/runc/$ns" || ok=1
    none find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path "*/$ns/*" || ok=1
    return $ok
}
check "nothing left: tasks, runtime state, cgroups, mounts, files in the checkout" nothing_left
echo "containerd: $pass passed, $fail failed"
[ $fail = 0 ]
