#!/usr/bin/env python3
"""Which functions of the static estiba binary the lifecycle commands run,
for the linker's symbol ordering (runtime-cli/hot-functions.txt).

Why: the kernel maps a binary's text 64 KB around each page fault, so
where the functions a command runs lie decides how much of the binary is
resident; scattered over the whole text, a `list` had 1.4 MB of 2.3 MB
resident for ~200 KB of code it ran. Placed together first, they take a
few windows.

How: one uprobe per Rust function of a release build with its symbols
kept (uprobes hit in every process that maps the file, so the
container's init counts too, which valgrind cannot follow), the
lifecycle commands run on a busybox bundle, and each probe's hit count
read after each command; glibc's functions from callgrind runs of the
commands valgrind can follow (start-up, malloc and the string functions
are nearly all of glibc any command runs). Output: mangled names,
glibc's first, then the Rust functions every command runs, then by how
many commands run them. The hash in a Rust name depends on the
compiler, the crates' versions and the release profile, not on the
code, so the list stays valid as code changes; names the build no
longer has are skipped by the linker.

Usage (root; needs tracefs in the kernel, Debian's binutils and valgrind):
    integration/bench/hot-functions.py [OUT]   (default runtime-cli/hot-functions.txt)
    integration/bench/hot-functions.py --check (any user: does the list still match the build?)
The probes (group "estibahot", made through a private tracefs mount) are
removed at the end whatever happens, and the containers deleted.
"""
import os
import subprocess
import sys
import tempfile

GROUP = "estibahot"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build():
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    host = next(l.split()[1] for l in host.splitlines() if l.startswith("host:"))
    env = dict(os.environ)
    # The release profile as it is (its settings are part of the hash in
    # every Rust symbol name), with the symbols kept by a flag.
    env["RUSTFLAGS"] = env.get("RUSTFLAGS", "") + " -C target-feature=+crt-static -C strip=none"
    target_dir = os.path.join(ROOT, "target", "hot")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "estiba", "--target", host,
                    "--target-dir", target_dir], cwd=ROOT, env=env, check=True)
    return os.path.join(target_dir, host, "release", "estiba")


def functions(binary):
    """(name, file offset) of every function symbol in an executable segment."""
    segs = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        p = line.split()
        if p and p[0] == "LOAD" and "E" in p[6:-1]:
            segs.append((int(p[2], 16), int(p[5], 16), int(p[1], 16)))  # vaddr, memsz, offset
    out = {}
    for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        p = line.split()
        # Rust's functions only: glibc's come from callgrind (with a probe
        # on each of glibc's too, a `run` here did not finish).
        if len(p) != 4 or p[2] not in "tTwW" or int(p[1], 16) == 0 or not p[3].startswith(("_ZN", "_R")):
            continue
        addr = int(p[0], 16)
        for vaddr, memsz, off in segs:
            if vaddr <= addr < vaddr + memsz:
                out.setdefault(addr - vaddr + off, p[3])
    return sorted((name, off) for off, name in out.items())


def write(path, text):
    """One write(2): tracefs files refuse the seek that Python's "a" mode does."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def hits(tracefs):
    """Probe number -> hits so far."""
    counts = {}
    with open(os.path.join(tracefs, "uprobe_profile")) as f:
        for line in f:
            p = line.split()
            if len(p) == 3 and p[1].startswith("f"):
                counts[int(p[1][1:])] = int(p[2])
    return counts


def libc_functions(binary, work):
    """glibc's functions that start-up, `list` and `state` run (valgrind can
    follow these; it cannot run a create), in the order first run. They
    are the process's start, malloc and the string functions: nearly all
    of glibc that any command runs."""
    out = os.path.join(work, "callgrind.out")
    names = []
    for args in (["--version"], ["list"], ["state", "nope"]):
        subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no",
                        f"--callgrind-out-file={out}", binary, "--root",
                        os.path.join(work, "root")] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        known = {}
        with open(out) as f:
            for line in f:
                if not line.startswith(("fn=", "cfn=")):
                    continue
                # "(N) name" the first time, "(N)" after; "name'2" for recursion.
                ref, _, name = line.split("=", 1)[1].strip().partition(" ")
                if name:
                    known[ref] = name.split("'")[0]
                name = known.get(ref, "")
                if name and not name.startswith(("_ZN", "_R", "0x", "(")) and name not in names:
                    names.append(name)
    return names


def steps(estiba, work):
    """The commands engines run, one step each, on a throwaway root."""
    root = os.path.join(work, "root")
    e = [estiba, "--root", root]
    b, sl = os.path.join(work, "bundle"), os.path.join(work, "sleeper")
    return [
        ("version", [e + ["--version"]]),
        ("run", [e + ["run", "--bundle", b, "r1"]]),
        ("create", [e + ["create", "--bundle", b, "c1"]]),
        ("state", [e + ["state", "c1"]]),
        ("start", [e + ["start", "c1"]]),
        ("list", [e + ["list"]]),
        ("delete", [["sleep", "0.2"], e + ["delete", "c1"]]),
        ("run -d", [e + ["run", "-d", "--bundle", sl, "s1"]]),
        ("exec", [e + ["exec", "s1", "/bin/true"]]),
        ("kill", [e + ["kill", "s1", "KILL"]]),
        ("delete --force", [["sleep", "0.2"], e + ["delete", "--force", "s1"]]),
        ("features", [e + ["features"]]),
    ]


def profile(binary, out):
    work = tempfile.mkdtemp(prefix="estiba-hot.")
    tracefs = os.path.join(work, "tracefs")
    os.mkdir(tracefs)
    for name, args in (("bundle", ["/bin/true"]), ("sleeper", ["/bin/sleep", "1000"])):
        subprocess.run([os.path.join(ROOT, "integration", "make-bundle.sh"),
                        os.path.join(work, name)] + args,
                       env=dict(os.environ, ESTIBA=binary), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["mount", "-t", "tracefs", "nodev", tracefs], check=True)
    funcs = functions(binary)
    # Before any probe: valgrind would run into their breakpoints.
    libc = libc_functions(binary, work)
    events = os.path.join(tracefs, "uprobe_events")
    placed = []
    try:
        for i, (_, off) in enumerate(funcs):
            try:
                write(events, f"p:{GROUP}/f{i} {binary}:0x{off:x}\n")
                placed.append(i)
            except OSError:
                pass  # an offset the kernel will not probe: left out
        write(os.path.join(tracefs, "events", GROUP, "enable"), "1")
        plan = steps(binary, work)
        used = {}  # probe -> steps that ran it
        before = hits(tracefs)
        print(f"{len(placed)} probes placed", file=sys.stderr)
        for step, cmds in plan:
            print(f"step {step}", file=sys.stderr)
            for cmd in cmds:
                # A file, not a pipe: a container's init keeps the caller's
                # stderr, and a pipe's reader would wait for it.
                with tempfile.TemporaryFile() as err:
                    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                          stdin=subprocess.DEVNULL, timeout=120)
                    if done.returncode != 0:
                        err.seek(0)
                        raise SystemExit(f"{step}: {err.read().decode().strip()}")
            now = hits(tracefs)
            for i, n in now.items():
                if n > before.get(i, 0):
                    used.setdefault(i, []).append(step)
            before = now
    finally:
        for cmd in (["delete", "--force", "r1"], ["delete", "--force", "c1"],
                    ["delete", "--force", "s1"]):
            subprocess.run([binary, "--root", os.path.join(work, "root")] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            write(os.path.join(tracefs, "events", GROUP, "enable"), "0")
        except OSError:
            pass
        for i in placed:
            try:
                write(events, f"-:{GROUP}/f{i}\n")
            except OSError:
                pass
        subprocess.run(["umount", tracefs])
        subprocess.run(["rm", "-rf", work])
    order = sorted(used, key=lambda i: (-len(used[i]), funcs[i][1]))
    with open(out, "w") as f:
        for name in libc:
            f.write(name + "\n")
        for i in order:
            f.write(funcs[i][0] + "\n")
    every = sum(1 for i in used if len(used[i]) == len(plan))
    print(f"{len(placed)} of {len(funcs)} functions probed; {len(order)} ran "
          f"({every} in every command); {len(libc)} of glibc's; written to {out}")


def check(listed):
    """Whether the names in the list still name this build's functions: a
    new compiler, crate version or profile changes every hash, and the
    linker then skips them all without a word. Any Rust name counts
    (`-C strip=none` keeps them); glibc's do not change."""
    binary = build()
    names = set(subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                               check=True).stdout.split())
    want = [l.strip() for l in open(listed) if l.strip()]
    have = sum(1 for n in want if n in names)
    share = have / max(len(want), 1)
    print(f"{listed}: {have} of {len(want)} names in this build ({share:.0%})")
    if share < 0.9:
        print("stale: run integration/bench/hot-functions.py (as root) and commit its output")
        return 1
    return 0


def main():
    if sys.argv[1:2] == ["--check"]:
        sys.exit(check(os.path.join(ROOT, "runtime-cli", "hot-functions.txt")))
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(ROOT, "runtime-cli", "hot-functions.txt"))
    if os.environ.get("_ESTIBA_HOT_INNER") != "1":
        binary = build()
        env = dict(os.environ, _ESTIBA_HOT_INNER="1", _ESTIBA_HOT_BIN=binary)
        # A private mount namespace: the tracefs mount is ours alone.
        sys.exit(subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                                 os.path.abspath(__file__), out], env=env).returncode)
    profile(os.environ["_ESTIBA_HOT_BIN"], out)


if __name__ == "__main__":
    main()
