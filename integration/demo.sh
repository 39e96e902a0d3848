#!/bin/sh
# The main job, from a fresh Debian machine as root: build estiba, make a
# bundle from busybox-static, run a container that shows its hostname, its
# pid 1 and its mounts, and clean up.
set -eu
cd "$(dirname "$0")/.."
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || { apt-get update -qq && apt-get install -y -qq busybox-static; }
estiba=$(integration/build-release.sh)
bundle=$(mktemp -d /tmp/estiba-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
ESTIBA=$estiba integration/make-bundle.sh "$bundle" sh -c 'echo "hostname: $(hostname)"; echo "my pid: $$"; echo "mounts:"; cat /proc/self/mounts'
"$estiba" run --bundle "$bundle" "demo-$$"
