#!/bin/bash
# docker (Debian's docker.io 20.10: dockerd, its own containerd and the runc
# shim) running containers through estiba, added as a runtime the way users
# add one (`--add-runtime estiba=PATH`, then `docker run --runtime estiba`).
# dockerd is private: data, exec root, socket and pid file in a temp dir, and
# its own network namespace. Every check looks at output and state, not exit codes
# alone. Ends with "docker: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/../.."
. integration/engines/lib.sh
engine_setup dockerd docker.io docker
# dockerd gets a network namespace of its own (loopback only): its bridge,
# iptables rules and container networks exist there, never on the host.
# Its default bridge is the test's own: estdocker0 on 10.126.0.0/24.
unshare --net -- sh -c 'ip link set lo up && ip link add estdocker0 type bridge &&
        ip addr add 10.126.0.1/24 dev estdocker0 && ip link set estdocker0 up && exec "$@"' sh \
    dockerd --bridge estdocker0 --data-root "$t/data" --exec-root "$t/exec" --pidfile "$t/dockerd.pid" -H "unix://$t/docker.sock" \
    --storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs --add-runtime "estiba=$estiba" > "$t/dockerd.log" 2>&1 &
dpid=$!
D="$bounded 120 docker -H unix://$t/docker.sock"
cleanup() {
    for c in $($D ps -aq 2>/dev/null); do $D rm -f "$c" >/dev/null 2>&1; done
    kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
    grep -q " $t" /proc/self/mountinfo && awk -v t="$t" '$5 ~ "^"t { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$t"
    # dockerd's parent cgroup (cgroupfs driver: /docker/<id>), if empty now.
    find /sys/fs/cgroup -maxdepth 2 -type d -name docker -exec rmdir {} \; 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 300); do $D version >/dev/null 2>&1 && break; sleep 0.1; done
$D version >/dev/null 2>&1 || { echo "docker: dockerd did not start"; tail -5 "$t/dockerd.log"; echo "docker: 0 passed, 1 failed, 0 skipped"; exit 1; }
integration/engines/busybox-image.sh "$t/busybox.tar" localhost/busybox:latest docker
$D load -q -i "$t/busybox.tar" >/dev/null || { echo "docker: image load failed"; exit 1; }
img=localhost/busybox:latest
E="$D"
engine=docker
missing="executable file not found"
# dockerd 20.10 gives every runc-like runtime the root <exec-root>/runtime-runc/moby.
estiba_root=$t/exec/runtime-runc/moby
stats_json="$D stats --no-stream --format '{{json .}}' d1"
. integration/engines/cli-checks.sh
R="$D run --runtime estiba --network none"
rm_f="$D rm -f"
run_checks
check "run: the runtime is estiba" sh -c "$R --name rt1 $img true && $D inspect -f '{{.State.ExitCode}} {{.HostConfig.Runtime}}' rt1 | grep -qx '0 estiba'"
$D rm -f rt1 >/dev/null

exec_checks
d1_cgroup_checks
$D update --memory 96m --memory-swap 96m d1 >/dev/null
check "update --memory: the cgroup follows" sh -c "test \$(cat /sys/fs/cgroup/memory$cg/memory.limit_in_bytes) = 100663296"
d1_freeze_and_stop_checks
d1_restart_checks

# The default bridge network (in dockerd's namespace): docker's
# libnetwork-setkey prestart hook configures eth0; its sysctl is applied.
$D run --runtime estiba -d --name k1 "$img" sleep 1000 >/dev/null
kid=$($D inspect -f '{{.Id}}' k1)
check "bridge network: the libnetwork-setkey prestart hook gives eth0 an address" sh -c "grep -q libnetwork-setkey $t/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$kid/config.json && $D exec k1 ip -4 addr show eth0 | grep -q 'inet 10\\.126\\.0\\.'"
check "bridge network: docker's sysctl is set" sh -c "$D exec k1 cat /proc/sys/net/ipv4/ip_unprivileged_port_start | grep -qx 0"
kill_checks k1

# The networks users run, all inside dockerd's namespace ($N runs a command
# there, as on the node): a busybox httpd serves "hello from NAME".
N="nsenter --net=/proc/$dpid/ns/net"
serve() { echo "mkdir -p /www && echo hello from $1 > /www/index.html && exec httpd -f -p 80 -h /www"; }
# fetch URL: from the node, retried while the server starts (bounded).
# (Debian's static busybox 1.35 wget crashes with -T: timeout bounds it.)
fetch() { for _ in $(seq 50); do $N timeout 5 busybox wget -q -O- "$1" 2>/dev/null && return; sleep 0.1; done; return 1; }
$D run --runtime estiba -d --name web1 -p 127.0.0.1:18080:80 "$img" sh -c "$(serve web1)" >/dev/null
check "bridge network, -p 127.0.0.1:18080:80: the published port answers from the node" \
    sh -c "$(declare -f fetch); N='$N'; fetch http://127.0.0.1:18080/ | grep -qx 'hello from web1'"
$D network create --subnet 10.123.0.0/24 estnet >/dev/null
$D run --runtime estiba -d --name srv --network estnet "$img" sh -c "$(serve srv)" >/dev/null
check "user-defined bridge: a container reaches another by name (docker's DNS)" \
    sh -c "$D run --rm --runtime estiba --network estnet $img sh -c 'for i in \$(seq 50); do timeout 5 wget -q -O- http://srv/ && break; sleep 0.1; done' | grep -qx 'hello from srv'"
# macvlan on a parent the test makes in dockerd's namespace: one end of a
# veth pair (this kernel has no dummy driver).
$N ip link add estmac0 type veth peer name estmac1 && $N ip link set estmac0 up && $N ip link set estmac1 up
$D network create -d macvlan --subnet 10.124.0.0/24 -o parent=estmac0 estmac >/dev/null
$D run --runtime estiba -d --name mac1 --network estmac --ip 10.124.0.10 "$img" sh -c "$(serve mac1)" >/dev/null
check "macvlan: a container reaches another on the macvlan network" \
    sh -c "$D run --rm --runtime estiba --network estmac $img sh -c 'for i in \$(seq 50); do timeout 5 wget -q -O- http://10.124.0.10/ && break; sleep 0.1; done' | grep -qx 'hello from mac1'"
check "macvlan: the container's interface is a macvlan of the parent" \
    sh -c "nsenter --net=/proc/\$($D inspect -f '{{.State.Pid}}' mac1)/ns/net ip -d link show eth0 | grep -q 'macvlan mode bridge'"
check "host network: the container is in the node's network namespace" \
    sh -c "test \"\$($D run --rm --runtime estiba --network host $img readlink /proc/self/ns/net)\" = \"\$(readlink /proc/$dpid/ns/net)\""
$D rm -f web1 srv mac1 >/dev/null
$D network rm estnet estmac >/dev/null

$R -d --name r1 --restart on-failure:2 "$img" sh -c 'exit 1' >/dev/null
for _ in $(seq 100); do [ "$($D inspect -f '{{.State.Status}}' r1)" = exited ] && [ "$($D inspect -f '{{.RestartCount}}' r1)" = 2 ] && break; sleep 0.1; done
check "restart policy on-failure:2: restarted twice, then exited 1" sh -c "$D inspect -f '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}' r1 | grep -qx '2 exited 1'"
$D rm -f r1 >/dev/null

runc_run="$D run --network none"
ending_checks

# (dockerd keeps its data root bind-mounted on itself, and network
# namespaces under exec/netns, while it runs.)
nothing_left() {
    local ok=0
    checkout_unchanged || ok=1
    none grep -E " $t/(data|exec/containerd)/" /proc/self/mountinfo || ok=1
    none $D ps -aq || ok=1
    test -d "$estiba_root" || { echo "no $estiba_root: estiba's state was elsewhere"; ok=1; }
    none "$estiba" --root "$estiba_root" list -q || ok=1
    none find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path '*/docker/*' || ok=1
    return $ok
}
check "nothing left: containers, estiba state, cgroups, mounts, files in the checkout" nothing_left
echo "docker: $pass passed, $fail failed, $skipped skipped"
[ $fail = 0 ]
