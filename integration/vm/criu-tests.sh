#!/bin/bash
# Runs the checkpoint/restore tests (tests/criu/) where CRIU can run: in
# a qemu guest booted with Debian's own kernel (integration/vm/run.sh;
# CRIU 3.17 cannot start on every host kernel). The guest sees the host's
# criu (the test command installs Debian's). The test binary is built here.
# Then podman's checkpoint and restore through estiba (criu-podman.sh);
# then both again on a v1 hybrid layout.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p estiba
estiba=$(integration/build-release.sh)
bin=$(cargo test -q -p estiba-integration --test criu --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | grep '/deps/')
[ -n "$bin" ] || { echo "no test binary built" >&2; exit 1; }
# podman's checkpoint through estiba, with the hand-built busybox image.
mkdir -p target/vm-criu
integration/engines/busybox-image.sh target/vm-criu/busybox.tar
cmd="export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; uname -r; criu --version; criu check \
    && ESTIBA_BIN=$estiba $bin --test-threads 1 && bash integration/vm/criu-podman.sh $estiba $PWD/target/vm-criu/busybox.tar"
ESTIBA_VM_TIMEOUT=${ESTIBA_VM_TIMEOUT:-600} integration/vm/run.sh "$PWD" -- sh -c "$cmd" || exit
# Again on a v1 hybrid layout (this host's: v1 controllers, v2 at
# /sys/fs/cgroup/unified), systemd as PID 1 to mount it.
# podman's containers have no cgroup namespace there: the per-hierarchy
# cgroup binds are criu's external mounts.
hybrid="export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; ESTIBA_BIN=$estiba $bin --test-threads 1 \
    && bash integration/vm/criu-podman.sh $estiba $PWD/target/vm-criu/busybox.tar"
ESTIBA_VM_INIT=systemd ESTIBA_VM_CGROUPS=hybrid ESTIBA_VM_TIMEOUT=${ESTIBA_VM_TIMEOUT:-600} \
    exec integration/vm/run.sh "$PWD" -- sh -c "$hybrid"
