#!/bin/bash
# Rootless podman (Debian's 4.3) running containers through estiba: an
# ordinary account the test makes (with subordinate ids, a runtime dir and
# a home, as a login gives) runs podman with estiba as its runtime; vfs
# storage in its home, no network. Every check looks at output and state.
# The account and all it made are removed at the end, pass or fail. Ends
# with "podman-rootless: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. integration/engines/lib.sh
engine_setup podman podman podman-rootless
command -v newuidmap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uidmap >/dev/null; }
chmod 755 "$t"
u="esrlpod$$"
useradd --create-home --shell /bin/sh --user-group "$u" || { echo "podman-rootless: useradd failed"; exit 1; }
uid=$(id -u "$u")
home=$(getent passwd "$u" | cut -d: -f6)
# useradd gives subordinate ranges where login.defs asks for them; else a
# free range after the highest one in use.
if ! grep -q "^$u:" /etc/subuid || ! grep -q "^$u:" /etc/subgid; then
    top=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'BEGIN { m = 100000 } { if ($2 + $3 > m) m = $2 + $3 } END { print m }')
    usermod --add-subuids "$top-$((top + 65535))" --add-subgids "$top-$((top + 65535))" "$u"
fi
run=/run/user/$uid
mkdir -p "$run" && chown "$u:" "$run" && chmod 700 "$run"
install -m 755 -o "$u" "$estiba" "$home/estiba"
cleanup() {
    $P rm -af -t 0 >/dev/null 2>&1
    $P system reset -f >/dev/null 2>&1
    pkill -KILL -U "$uid" 2>/dev/null
    for _ in $(seq 50); do pgrep -U "$uid" >/dev/null || break; sleep 0.1; done
    grep -q " $home" /proc/self/mountinfo && awk -v h="$home" '$5 ~ "^"h { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    userdel --remove --force "$u" >/dev/null 2>&1
    sed -i "/^$u:/d" /etc/subuid /etc/subgid 2>/dev/null
    rm -rf "$run" "$home" "$t"
}
trap cleanup EXIT
# podman as the account, with what a login session gives it.
as_user="runuser -u $u -- env -i -C $home PATH=/usr/local/bin:/usr/bin:/bin HOME=$home USER=$u XDG_RUNTIME_DIR=$run"
P="$bounded 120 $as_user podman --runtime $home/estiba --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
integration/engines/busybox-image.sh "$t/busybox.tar"
chmod 644 "$t/busybox.tar"
$P load -q -i "$t/busybox.tar" >/dev/null 2>&1 || { echo "podman-rootless: image load failed"; exit 1; }
img=localhost/busybox:latest
R="$P run --network none"

$R --rm "$img" sh -c 'echo out; echo err >&2; exit 3' > "$t/out" 2> "$t/err"; rc=$?
check "run: exit code propagated" test $rc = 3
check "run: stdout and stderr kept apart" sh -c "grep -qx out $t/out && grep -qx err $t/err && ! grep -q err $t/out"
check "run: root in the container is the account outside, the rest its subordinate ids" sh -c "$R --rm $img cat /proc/self/uid_map | awk '{print \$1, \$2}' | tr '\\n' ' ' | grep -qx '0 $uid 1 [0-9]* '"
check "run: pid 1" sh -c "$R --rm $img sh -c 'echo \$\$' | grep -qx 1"
check "run -i: stdin reaches the process" sh -c "echo piped | $R --rm -i $img cat | grep -qx piped"
check "run -t: a terminal" sh -c "$R --rm -t $img tty | tr -d '\\r' | grep -q '^/dev/pts/'"
check "run --read-only: the rootfs is read-only" sh -c "$R --rm --read-only $img sh -c 'touch /x 2>/dev/null && echo rw || echo ro' | grep -qx ro"
check "run: env, workdir, user 1000 (a subordinate id)" sh -c "$R --rm -e FOO=bar -w /tmp -u 1000:1000 $img sh -c 'echo \$FOO \$(pwd) \$(id -u)' | grep -qx 'bar /tmp 1000'"
$R --rm "$img" no-such-program > /dev/null 2> "$t/missing"; rc=$?
check "run: a missing executable is exit 127" test $rc = 127

$R -d --name d1 "$img" sh -c 'trap "exit 7" TERM; echo started; while true; do sleep 0.1; done' >/dev/null
check "detached: running" sh -c "$P inspect -f '{{.State.Status}}' d1 | grep -qx running"
id=$($P inspect -f '{{.Id}}' d1)
check "it is estiba's container, its state in the account's runtime dir" test -f "$run/estiba/$id/state.json"
check "exec: output" sh -c "$P exec d1 echo exec-ok | grep -qx exec-ok"
$P exec d1 sh -c 'exit 5'; rc=$?
check "exec: exit code" test $rc = 5
check "exec: same pid namespace (pid 1 is the init)" sh -c "$P exec d1 cat /proc/1/cmdline | tr '\\0' ' ' | grep -q 'sh -c trap'"
check "exec -t: a terminal" sh -c "$P exec -t d1 tty | tr -d '\\r' | grep -q '^/dev/pts/'"
check "logs: the container's output" sh -c "$P logs d1 | grep -qx started"
check "top: lists the init" sh -c "$P top d1 | grep -q 'sh -c trap'"
$P stop -t 10 d1 >/dev/null
check "stop: SIGTERM trapped inside, its exit code reported" sh -c "$P inspect -f '{{.State.ExitCode}}' d1 | grep -qx 7"
$P start d1 >/dev/null
check "start again after stop: running" sh -c "$P inspect -f '{{.State.Status}}' d1 | grep -qx running"
$P kill d1 >/dev/null
$P wait d1 >/dev/null
check "kill: SIGKILL, exit 137" sh -c "$P inspect -f '{{.State.Status}} {{.State.ExitCode}}' d1 | grep -qx 'exited 137'"
$P rm -f -t 0 d1 >/dev/null

nothing_left() {
    local ok=0
    checkout_unchanged || ok=1
    none $P ps -aq || ok=1
    none sh -c "ls $run/estiba 2>/dev/null" || ok=1
    return $ok
}
check "nothing left: containers, estiba state, files in the checkout" nothing_left
echo "podman-rootless: $pass passed, $fail failed, $skipped skipped"
[ $fail = 0 ]
