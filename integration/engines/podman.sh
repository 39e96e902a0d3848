#!/bin/bash
# podman (Debian's 4.3, with conmon) running containers through estiba.
# Everything podman keeps goes to a temp dir (storage, run root, its tmp dir,
# events, containers.conf); no network (--network none). Every check looks
# at output and state, not exit codes alone. Ends with
# "podman: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. integration/engines/lib.sh
engine_setup podman podman podman
podman_conf "$t" "$estiba"
# (conmon, with any runtime, writes a file "oom" into its working directory
# when the OOM killer strikes: podman runs in $t, not in the checkout.)
P="$bounded 120 env -C $t podman --root $t/storage --runroot $t/runroot --storage-driver vfs"
# netavark keeps its run state (IPAM, aardvark-dns) in this fixed dir.
netrun=/run/containers/networks
[ -e $netrun ] && netrun_made=false || netrun_made=true
cleanup() {
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
    $P rm -af -t 0 >/dev/null 2>&1
    $P system reset -f >/dev/null 2>&1
    grep -q " $t" /proc/self/mountinfo && awk -v t="$t" '$5 ~ "^"t { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$t"
    # A just-removed child cgroup can keep its parent busy for a moment.
    for _ in $(seq 50); do
        find /sys/fs/cgroup -mindepth 2 -maxdepth 5 -depth -type d -path '*/libpod_parent*' -exec rmdir {} \; 2>/dev/null
        ls -d /sys/fs/cgroup/*/libpod_parent >/dev/null 2>&1 || break
        sleep 0.1
    done
    # (after podman's last command, which makes it again)
    $netrun_made && rm -rf $netrun
}
trap cleanup EXIT
integration/engines/busybox-image.sh "$t/busybox.tar"
$P load -q -i "$t/busybox.tar" >/dev/null || { echo "podman: image load failed"; exit 1; }
img=localhost/busybox:latest
E="$P"
engine=podman
missing="not found"
# podman gives the runtime no --root: estiba's default one holds its state.
estiba_root=/run/estiba
stats_json="$P stats --no-stream --format json d1"
. integration/engines/cli-checks.sh
R="$P run --network none"
rm_f="$P rm -f -t 0"
run_checks

exec_checks
d1_cgroup_checks
d1_freeze_and_stop_checks
$P start d1 >/dev/null
check "start again after stop: running" sh -c "$P inspect -f '{{.State.Status}}' d1 | grep -qx running"
d1_restart_checks

$R -d --name k1 "$img" sleep 1000 >/dev/null
kill_checks k1

# An id-mapped volume (podman passes `idmap` with no mappings: the
# container's own). A host file of uid 1000 is 1000's inside a container
# whose root is host 100000, and the container root's file is host root's;
# without :idmap the file is nobody's.
idmap_volume() {
    local v="$t/idmap-vol" u="--uidmap 0:100000:65536 --gidmap 0:100000:65536"
    mkdir -p "$v" && echo x > "$v/file" && chown -R 1000:1000 "$v" || return 1
    [ "$($R --rm $u -v "$v:/vol:idmap" "$img" sh -c 'stat -c "%u %g" /vol/file; touch /vol/made')" = "1000 1000" ] &&
        [ "$(stat -c '%u %g' "$v/made")" = "0 0" ] &&
        [ "$($R --rm $u -v "$v:/vol" "$img" stat -c '%u' /vol/file)" = 65534 ]
}
check "an :idmap volume keeps the host's ids in a user-namespaced container" idmap_volume

# The networks users run, with podman's netavark in a network namespace the
# test holds open (its bridge, firewall rules and forwarding sysctl exist
# only there; $N runs a command there, as on the node).
unshare --net -- sh -c 'ip link set lo up; exec sleep 600' &
holder=$!
N="nsenter --net=/proc/$holder/ns/net"
PN="$bounded 120 $N env -C $t podman --root $t/storage --runroot $t/runroot --storage-driver vfs"
serve() { echo "mkdir -p /www && echo hello from $1 > /www/index.html && exec httpd -f -p 80 -h /www"; }
# (Debian's static busybox 1.35 wget crashes with -T: timeout bounds it.)
fetch() { for _ in $(seq 50); do $N timeout 5 busybox wget -q -O- "$1" 2>/dev/null && return; sleep 0.1; done; return 1; }
$PN run -d --name web1 -p 127.0.0.1:18081:80 "$img" sh -c "$(serve web1)" >/dev/null
check "bridge network, -p 127.0.0.1:18081:80: the published port answers from the node" \
    sh -c "$(declare -f fetch); N='$N'; fetch http://127.0.0.1:18081/ | grep -qx 'hello from web1'"
$PN network create --subnet 10.125.0.0/24 estnet >/dev/null
$PN run -d --name srv --network estnet "$img" sh -c "$(serve srv)" >/dev/null
check "user-defined network: a container reaches another by name (aardvark-dns)" \
    sh -c "$PN run --rm --network estnet $img sh -c 'for i in \$(seq 50); do timeout 5 wget -q -O- http://srv/ && break; sleep 0.1; done' | grep -qx 'hello from srv'"
check "host network: the container is in the node's network namespace" \
    sh -c "test \"\$($PN run --rm --network host $img readlink /proc/self/ns/net)\" = \"\$(readlink /proc/$holder/ns/net)\""
$PN rm -f -t 0 web1 srv >/dev/null
$PN network rm estnet >/dev/null
kill $holder; wait $holder 2>/dev/null

runc_run="$R --runtime $(command -v runc || echo runc)"
ending_checks

nothing_left() {
    local ok=0
    checkout_unchanged || ok=1
    none grep " $t/" /proc/self/mountinfo || ok=1
    none $P ps -aq || ok=1
    # (podman's containers have 64-hex ids in estiba's default root.)
    none sh -c "$estiba list -q | grep -E '^[0-9a-f]{64}\$'" || ok=1
    none find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -name 'libpod-*' || ok=1
    return $ok
}
check "nothing left: containers, estiba state, cgroups, mounts, files in the checkout" nothing_left
echo "podman: $pass passed, $fail failed, $skipped skipped"
[ $fail = 0 ]
