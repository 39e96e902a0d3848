#!/bin/bash
# In the criu guest (criu-tests.sh): podman's `container checkpoint` and
# `container restore` of a container running through estiba. A counter
# must go on from where it was. Usage: criu-podman.sh ESTIBA IMAGE.tar.
# Ends with "podman-criu: N passed, N failed".
E=$1 image=$2
t=$(mktemp -d /tmp/podman-criu.XXXXXX)
. "$(dirname "$0")/../engines/lib.sh"
podman_conf "$t" "$E"
P="timeout 120 podman --root $t/storage --runroot $t/runroot --storage-driver vfs"
# (lib.sh's check runs a command; these are results already.)
result() {
    if [ "$2" = 0 ]; then pass=$((pass+1)); echo "ok - $1"; else fail=$((fail+1)); echo "not ok - $1"; fi
}
# Renamed into place: a read between `>`'s truncation and the write read
# an empty count once (CI at 552260d: "(, then 59)").
count() { $P exec c cat /tmp/count 2>/dev/null || echo -1; }
$P load -q -i "$image" >/dev/null
$P run -d --network none --name c localhost/busybox:latest \
    sh -c 'i=0; while :; do echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; i=$((i+1)); sleep 0.1; done' >/dev/null
sleep 2
before=$(count)
$P container checkpoint c >/dev/null; rc=$?
status=$($P inspect -f '{{.State.Status}}' c)
result "podman container checkpoint: the container is checkpointed (exited)" $([ $rc = 0 ] && [ "$status" = exited ]; echo $?)
$P container restore c >/dev/null; rc=$?
after=$(count)
result "podman container restore: running, the counter goes on ($before, then $after)" \
    $([ $rc = 0 ] && [ "$after" -ge "$before" ] && [ "$before" -gt 5 ]; echo $?)
id=$($P inspect -f '{{.Id}}' c)
result "the restored container is estiba's (estiba state: running)" \
    $("$E" state "$id" | grep -q '"status": "running"'; echo $?)
$P rm -f -t 0 c >/dev/null 2>&1
echo "podman-criu: $pass passed, $fail failed"
[ $fail = 0 ]
