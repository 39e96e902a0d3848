// The benchmark's floor: the kernel work that the benchmark's bundle
// (integration/make-bundle.sh: `estiba spec`'s config, runc's default) asks of any runtime, and
// nothing else: new pid, mount, network, ipc and uts namespaces, the loopback
// up, one cgroup in each v1 hierarchy (made, device rules, joined, removed),
// the config's mounts, /dev's nodes and links, the masked and read-only
// paths, pivot_root, the hostname, the rlimit, no_new_privs, exec, wait.
// No config parsing, no state, no checks, no CVE-2019-5736 protection: the
// least a `run` of this bundle can cost here, to read the runtimes' times
// against. A change to that spec must be made here too.
// Built static (as estiba is), so both pay glibc's static start-up.
// usage: floor ROOTFS ID   (cgroup v1 hosts only: exits 2 elsewhere)
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

// The v1 hierarchies this process is in, as /sys/fs/cgroup/<dir> names.
static char ctl[16][64];
static int nctl;
static char id[64];

static void die(const char *what) { perror(what); _exit(1); }
static int rmdirs(void);
static pid_t child_pid;
// In the parent: the child killed and the cgroups removed first.
static void fail(const char *what) {
    perror(what);
    if (child_pid > 0) { kill(child_pid, SIGKILL); waitpid(child_pid, NULL, 0); }
    rmdirs();
    _exit(1);
}
static void put(const char *path, const char *val) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, val, strlen(val)) < 0) fail(path);
    close(fd);
}
static void get(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd < 0 ? -1 : read(fd, buf, n - 1);
    if (r < 0) fail(path);
    buf[r] = 0;
    close(fd);
}
static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data) {
    if (mount(src, dst, type, fl, data) < 0) die(dst);
}

static void hierarchies(void) {
    char line[512];
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) die("/proc/self/cgroup");
    while (nctl < 16 && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b || b == a + 1) continue; // the v2 line "0::/..."
        *b = 0;
        a++;
        if (!strncmp(a, "name=", 5)) a += 5;
        snprintf(ctl[nctl++], sizeof ctl[0], "%s", a);
    }
    fclose(f);
}

static void loopback_up(void) {
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("lo up");
    close(s);
}

static void child(int go, const char *rootfs) {
    char c, p[1200];
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) < 0) die("unshare");
    if (read(go, &c, 1) != 1) _exit(1);
    loopback_up();
    setsid();
    mnt(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    mnt(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
    if (chdir(rootfs) < 0) die("chdir");
    mnt("proc", "proc", "proc", 0, NULL);
    mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    mkdir("dev/pts", 0755);
    mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mkdir("dev/shm", 0755);
    mnt("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
    mkdir("dev/mqueue", 0755);
    mnt("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    mnt("sysfs", "sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);
    mnt("tmpfs", "sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=755");
    for (int i = 0; i < nctl; i++) {
        char src[1200];
        snprintf(p, sizeof p, "sys/fs/cgroup/%s", ctl[i]);
        mkdir(p, 0755);
        snprintf(src, sizeof src, "/sys/fs/cgroup/%s/%s", ctl[i], id);
        mnt(src, p, NULL, MS_BIND | MS_REC, NULL);
        mnt(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    }
    mnt(NULL, "sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    static const struct { const char *n; int maj, min; } devs[] = {
        {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
        {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
    for (int i = 0; i < 6; i++)
        if (mknod(devs[i].n, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0) die(devs[i].n);
    symlink("/proc/self/fd", "dev/fd");
    symlink("/proc/self/fd/0", "dev/stdin");
    symlink("/proc/self/fd/1", "dev/stdout");
    symlink("/proc/self/fd/2", "dev/stderr");
    symlink("pts/ptmx", "dev/ptmx");
    static const char *masked[] = {"proc/acpi", "proc/asound", "proc/kcore", "proc/keys",
        "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug",
        "sys/firmware", "proc/scsi"};
    for (int i = 0; i < 10; i++) {
        struct stat st;
        if (stat(masked[i], &st) < 0) continue;
        if (S_ISDIR(st.st_mode)) mnt("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
        else mnt("dev/null", masked[i], NULL, MS_BIND, NULL);
    }
    static const char *ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};
    for (int i = 0; i < 5; i++) {
        if (access(ro[i], F_OK) < 0) continue;
        mnt(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL);
        mnt(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    }
    if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0) die("umount");
    if (chdir("/") < 0) die("chdir /");
    mnt(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
    if (sethostname("estiba", 6) < 0) die("sethostname");
    struct rlimit rl = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
    char *argv[] = {"/bin/true", NULL}, *envp[] = {"PATH=/bin", NULL};
    execve(argv[0], argv, envp);
    die("execve");
}

// Every cgroup removed that can be; -1 if any could not be.
static int rmdirs(void) {
    char p[1200];
    int failed = 0;
    for (int i = 0; i < nctl; i++) {
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s/%s", ctl[i], id);
        if (rmdir(p) < 0) failed = -1;
    }
    return failed;
}

int main(int argc, char **argv) {
    char p[1200], buf[256], pid[32];
    int go[2];
    if (argc != 3) return 2;
    snprintf(id, sizeof id, "%s", argv[2]);
    hierarchies();
    if (nctl == 0) {
        fprintf(stderr, "floor: no cgroup v1 hierarchy here\n");
        return 2;
    }
    if (pipe2(go, O_CLOEXEC) < 0) fail("pipe");
    pid_t c = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
    if (c < 0) fail("clone");
    if (c == 0) { close(go[1]); child(go[0], argv[1]); }
    child_pid = c;
    close(go[0]);
    snprintf(pid, sizeof pid, "%d", c);
    for (int i = 0; i < nctl; i++) {
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s/%s", ctl[i], id);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) fail(p);
        if (!strcmp(ctl[i], "cpuset")) {
            static const char *const copied[] = {"cpuset.cpus", "cpuset.mems"};
            for (int j = 0; j < 2; j++) {
                snprintf(p, sizeof p, "/sys/fs/cgroup/cpuset/%s", copied[j]);
                get(p, buf, sizeof buf);
                snprintf(p, sizeof p, "/sys/fs/cgroup/cpuset/%s/%s", id, copied[j]);
                put(p, buf);
            }
        }
        if (!strcmp(ctl[i], "devices")) {
            static const char *allow[] = {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm",
                "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
                "c 10:200 rwm", "c 136:* rwm"};
            snprintf(p, sizeof p, "/sys/fs/cgroup/devices/%s/devices.deny", id); put(p, "a *:* rwm");
            snprintf(p, sizeof p, "/sys/fs/cgroup/devices/%s/devices.allow", id);
            for (int j = 0; j < 12; j++) put(p, allow[j]);
        }
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s/%s/cgroup.procs", ctl[i], id);
        put(p, pid);
    }
    if (write(go[1], "x", 1) != 1) fail("go");
    int st;
    if (waitpid(c, &st, 0) < 0) fail("wait");
    child_pid = 0;
    if (rmdirs() < 0) fail("rmdir");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
