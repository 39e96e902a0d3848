# Sourced by every engine test, which then calls engine_setup.

# engine_setup COMMAND PACKAGE NAME: installs PACKAGE unless COMMAND is
# there, builds estiba unless ESTIBA_BIN names one, and makes the test's
# temp dir: sets estiba and t.
engine_setup() {
    command -v "$1" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
    estiba=${ESTIBA_BIN:-$PWD/target/debug/estiba}
    [ -x "$estiba" ] || cargo build -q -p estiba
    t=$(mktemp -d "/tmp/estiba-$3.XXXXXX")
    git status --porcelain --untracked-files=all > "$t/checkout.before" 2>/dev/null
}

# For each test's "nothing left" check: the checkout holds no file the
# test (or an engine it ran) did not find there; prints what changed.
checkout_unchanged() {
    git status --porcelain --untracked-files=all 2>/dev/null | diff "$t/checkout.before" -
}

# Engine CLIs are bounded with `timeout --foreground`: without it, timeout
# moves the CLI into a process group of its own, which is not the terminal's
# foreground group, so a `-t` client reading its pty is stopped by SIGTTIN
# and hangs until killed (seen when script(1) runs the command with /bin/sh,
# i.e. when SHELL is unset, as in CI).
# (A string, not a function: the bounded commands also run in `sh -c`.)
bounded="timeout --foreground -s KILL"

pass=0 fail=0 skipped=0
# check DESCRIPTION COMMAND...: one TAP line, passing when the command does.
# A failure shows the command's last output lines as TAP comments, so a CI
# log says why without the temp dir.
check() {
    local rc
    "${@:2}" > "$t/check.out" 2>&1
    rc=$?
    cat "$t/check.out" >> "$t/checks.log"
    if [ $rc = 0 ]; then
        pass=$((pass+1)); echo "ok - $1"
    else
        fail=$((fail+1)); echo "not ok - $1"
        tail -n 5 "$t/check.out" | sed 's/^/#   /'
    fi
}

# in_pty INPUT COMMAND: runs the shell command on a fresh pty of its own, the
# terminal a user at a prompt would give it (util-linux's script), with
# INPUT (printf format) typed in; prints what the terminal showed, without
# carriage returns. The shell is pinned so the session behaves alike
# everywhere. Its input stays open until the session ends: at EOF, script
# types the terminal's VEOF character, which on a terminal the client has
# made raw is an ordinary byte and shows up in the output (a CI run saw
# "^@/dev/pts/0" from `ctr task exec -t ... tty`).
in_pty() {
    local feed feeder
    exec {feed}< <(printf "$1"; exec sleep 600)
    feeder=$!
    SHELL=/bin/sh script -qec "$2" /dev/null <&$feed | tr -d '\r'
    kill "$feeder" 2>/dev/null
    exec {feed}<&-
}

# shows FILE REGEX...: true when each extended REGEX matches a whole line
# of FILE; otherwise prints FILE, for check's diagnostics.
shows() {
    local file=$1 re
    shift
    for re in "$@"; do
        grep -qxE -- "$re" "$file" || { cat "$file"; return 1; }
    done
}

# none COMMAND...: true when the command prints nothing on stdout;
# otherwise prints what it printed (what was left behind).
none() {
    local out
    out=$("$@" 2>/dev/null)
    [ -z "$out" ] || { printf 'left by the test (%s): %s\n' "$*" "$out"; return 1; }
}

# podman_conf DIR ESTIBA: a private podman's containers.conf in DIR (its
# tmp dir, events file and network configs there too), exported as
# CONTAINERS_CONF. What README tells users: estiba as the runtime, its JSON
# log format, and no default rlimits above this host's hard limits (root
# lacks CAP_SYS_RESOURCE).
podman_conf() {
    mkdir -p "$1/tmp"
    cat > "$1/containers.conf" <<TOML
[containers]
default_ulimits = []
# conmon stays in the test's cgroup: podman would otherwise leave a
# libpod_parent/conmon cgroup behind that outlives the test.
cgroups = "no-conmon"
[engine]
runtime = "estiba"
runtime_supports_json = ["estiba", "crun", "runc"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$1/events.log"
tmp_dir = "$1/tmp"
[engine.runtimes]
estiba = ["$2"]
[network]
network_config_dir = "$1/networks"
TOML
    export CONTAINERS_CONF="$1/containers.conf"
}
