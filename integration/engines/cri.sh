#!/bin/bash
# Kubernetes' path to estiba: containerd's CRI plugin (Debian's 1.6) with a
# runtime handler `estiba` (the runc v2 shim, BinaryName = estiba), driven
# over its socket by a CRI client built on Kubernetes' cri-api definitions
# (integration/cri), as the kubelet drives it. Pods get their network from
# CNI (Debian's bridge and host-local plugins). containerd runs in a network
# namespace of its own, so the bridge, the pods' addresses and routes exist
# only there; the client runs in it too, as the node. State, logs, IPAM and
# the shim's runtime root are in a temp dir. Ends with
# "cri: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. integration/engines/lib.sh
engine_setup containerd containerd cri
command -v protoc >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null; }
[ -x /usr/lib/cni/bridge ] || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null; }
cg="estiba-cri-$$"
subnet=10.88.77
mkdir -p "$t/net.d" "$t/logs"
ls /run/netns 2>/dev/null | sort > "$t/netns.before"
cat > "$t/config.toml" <<TOML
version = 2
root = "$t/root"
state = "$t/state"
[grpc]
  address = "$t/sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:test"
  # No AppArmor profile is loaded into the host's kernel for the test.
  disable_apparmor = true
  # The sandbox's oom_score_adj is -998, which needs CAP_SYS_RESOURCE; root
  # here lacks it (runc fails the same way), so no lower than containerd's.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "estiba"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.estiba]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.estiba.options]
        BinaryName = "$estiba"
        Root = "$t/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$t/net.d"
TOML
cat > "$t/net.d/10-estiba.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "estiba-cri", "plugins": [
  {"type": "bridge", "bridge": "estcri0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet.0/24"}]], "dataDir": "$t/ipam"}}
]}
JSON
unshare --net -- sh -c 'ip link set lo up; exec "$@"' sh \
    containerd --config "$t/config.toml" > "$t/containerd.log" 2>&1 &
cpid=$!
C="$bounded 60 ctr --address $t/sock -n k8s.io"
cleanup() {
    kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
    # Shims of a failed run outlive containerd; they carry its address.
    pkill -KILL -f "containerd-shim-runc-v2 .*-address $t/sock" 2>/dev/null
    comm -13 "$t/netns.before" <(ls /run/netns 2>/dev/null | sort) | while read -r n; do
        [[ $n == cni-* ]] && ip netns delete "$n"
    done
    grep -q " $t" /proc/self/mountinfo && awk -v t="$t" '$5 ~ "^"t { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$t"
    # The pods' parents (the kubelet's to make and remove; runc leaves them).
    find /sys/fs/cgroup -mindepth 2 -maxdepth 5 -depth -type d -path "*/$cg*" -exec rmdir {} \; 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$t/sock" ] && break; sleep 0.1; done
client=$(CARGO_TARGET_DIR="$PWD/target" cargo build -q --manifest-path integration/cri/Cargo.toml --message-format json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*estiba-cri-check\)".*/\1/p' | tail -n1)
[ -x "$client" ] || { echo "not ok - build the CRI client"; echo "cri: 0 passed, 1 failed"; exit 1; }
integration/engines/busybox-image.sh "$t/busybox.tar"
integration/engines/pause-image.sh "$t/pause.tar" localhost/pause:test
for i in busybox pause; do
    $C images import "$t/$i.tar" >/dev/null || { echo "cri: image import failed"; echo "cri: 0 passed, 1 failed"; exit 1; }
done

CRI_SOCKET="$t/sock" CRI_IMAGE=localhost/busybox:latest CRI_LOG_DIR="$t/logs" \
    CRI_CGROUP_PARENT="/$cg" CRI_NODE_NETNS="/proc/$cpid/ns/net" CRI_SUBNET="$subnet." \
    ESTIBA="$estiba" ESTIBA_ROOT="$t/runc/k8s.io" \
    $bounded 300 nsenter --net="/proc/$cpid/ns/net" "$client" | tee "$t/client.out"
pass=$(grep -c '^ok - ' "$t/client.out")
fail=$(grep -c '^not ok - ' "$t/client.out")
grep -q '^cri-checks: ' "$t/client.out" || { echo "not ok - the CRI client ended early"; fail=$((fail+1)); }

nothing_left() {
    local ok=0
    checkout_unchanged || ok=1
    none pgrep -f "containerd-shim-runc-v2 .*-address $t/sock" || ok=1
    none sh -c "ls $t/runc/k8s.io 2>/dev/null" || ok=1
    none comm -13 "$t/netns.before" <(ls /run/netns 2>/dev/null | sort) || ok=1
    none grep " $t/" /proc/self/mountinfo || ok=1
    # The containers' cgroups (named by their ids); the pods' parents are
    # the kubelet's, so here the test's, to remove.
    none find /sys/fs/cgroup -mindepth 3 -maxdepth 5 -type d -path "*/$cg/*" -regex '.*/[0-9a-f]\{64\}' || ok=1
    return $ok
}
check "nothing left: shims, estiba state, pod netns, mounts, pod cgroups, files in the checkout" nothing_left
echo "cri: $pass passed, $fail failed"
[ $fail = 0 ]
