#!/bin/bash
# integration/vm/run.sh DIR -- COMMAND...: runs COMMAND (as root, cwd as
# now) in a qemu guest with Debian's kernel booted cgroup v2 only, DIR shared
# read-write at its own path and the host's / read-only underneath. Prints
# its stdout and stderr and exits with its code (124 on timeout, 125 when
# the guest did not run it). TCG here (the sandbox's /dev/kvm is PVM, which
# cannot run a stock kernel); KVM where a real one exists
# (ESTIBA_VM_ACCEL=kvm). ESTIBA_VM_TIMEOUT (s, default 1500).
# ESTIBA_VM_INIT=systemd boots the host's systemd as the guest's PID 1 (it
# runs COMMAND as a service), for the systemd cgroup driver; then
# ESTIBA_VM_CGROUPS=hybrid gives the guest this host's layout (v1
# controllers, v2 at /sys/fs/cgroup/unified) instead of pure v2.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${ESTIBA_VM_CACHE:-$HOME/.cache/estiba-vm}
[ "${1:-}" ] && [ "${2:-}" = "--" ] || { echo "usage: $0 DIR -- COMMAND..." >&2; exit 2; }
share=$(realpath -e "$1") || exit 2
shift 2
"$here/build.sh" || exit 125
ctl=$(mktemp -d /tmp/estiba-vm.XXXXXX)
trap 'rm -rf "$ctl"' EXIT
printf '%q ' "$@" > "$ctl/cmd"
init=${ESTIBA_VM_INIT:-busybox}
printf 'SHARE=%q\nCWD=%q\nINIT=%q\n' "$share" "$(pwd -P)" "$init" > "$ctl/env"
case "$init:${ESTIBA_VM_CGROUPS:-v2}" in
    busybox:v2) cgroups="cgroup_no_v1=all" ;;
    systemd:v2) cgroups="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" ;;
    systemd:hybrid) cgroups="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
    *) echo "run.sh: ESTIBA_VM_INIT=$init with ESTIBA_VM_CGROUPS=${ESTIBA_VM_CGROUPS:-} is not a layout" >&2; exit 2 ;;
esac
case "${ESTIBA_VM_ACCEL:-tcg}" in
    kvm) accel=(-accel kvm -cpu host) ;;
    *) accel=(-accel tcg -cpu max) ;;
esac
# A small empty disk: the guest's one block device, for the tests of
# per-device I/O limits.
truncate -s 16M "$ctl/disk.img"
boot() {
    timeout -k 5 "${ESTIBA_VM_TIMEOUT:-1500}" qemu-system-x86_64 \
        -nodefaults -no-user-config -display none -monitor none -no-reboot \
        -machine pc "${accel[@]}" -smp "$(nproc)" -m 2G \
        -kernel "$cache/vmlinux" -initrd "$cache/initrd" \
        -append "console=ttyS0 quiet panic=-1 $cgroups rdinit=/init" \
        -serial "file:$ctl/console" \
        -drive "file=$ctl/disk.img,if=virtio,format=raw" \
        -fsdev "local,id=ctl,path=$ctl,security_model=none" -device virtio-9p-pci,fsdev=ctl,mount_tag=vmctl \
        -fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap" -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
        -fsdev "local,id=share,path=$share,security_model=none,multidevs=remap" -device virtio-9p-pci,fsdev=share,mount_tag=share \
        </dev/null >"$ctl/qemu.log" 2>&1 &
    local q=$!
    # The emulated guest's kernel has once locked up both CPUs for good
    # (soft lockups, nothing moving, until the timeout); a lockup is
    # the guest kernel's, not a test result, so the guest is stopped at
    # once and booted again (once, and said so).
    while kill -0 "$q" 2>/dev/null; do
        if grep -q 'BUG: soft lockup' "$ctl/console" 2>/dev/null; then
            locked=1
            pkill -KILL -P "$q" 2>/dev/null
            kill -KILL "$q" 2>/dev/null
            break
        fi
        sleep 2
    done
    wait "$q" 2>/dev/null
}
start=$(date +%s.%N)
for attempt in 1 2; do
    locked=0
    rm -f "$ctl/console" "$ctl/out" "$ctl/err" "$ctl/rc"
    boot
    qrc=$?
    [ $locked = 1 ] || break
    echo "vm: the guest kernel locked up (attempt $attempt):" >&2
    grep -m 3 'soft lockup' "$ctl/console" >&2
    [ $attempt = 2 ] && { echo "vm: locked up twice" >&2; exit 125; }
    echo "vm: booting it again" >&2
    start=$(date +%s.%N)
done
cat "$ctl/out" 2>/dev/null
cat "$ctl/err" 2>/dev/null >&2
if [ $qrc = 124 ]; then echo "vm: timed out" >&2; exit 124; fi
if [ ! -f "$ctl/rc" ]; then
    echo "vm: the guest did not run the command; console tail:" >&2
    tail -n 20 "$ctl/console" >&2; tail -n 20 "$ctl/qemu.log" >&2
    exit 125
fi
printf 'vm: %.1f s in the guest\n' "$(echo "$(date +%s.%N) - $start" | bc -l)" >&2
exit "$(cat "$ctl/rc")"
