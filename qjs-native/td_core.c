/* td_core: the only C logic of tunneldigger (see td_core.h). Plain POSIX/Linux, no glibc-only
 * APIs, so the same file builds against glibc (Node addon, x86_64 client) and musl (OpenWrt). */
#define _GNU_SOURCE
#include "td_core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <spawn.h>

#ifndef IP_PMTUDISC_PROBE
#define IP_PMTUDISC_PROBE 3
#endif
#ifndef IPV6_PMTUDISC_PROBE
#define IPV6_PMTUDISC_PROBE 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* struct sockaddr_nl from <linux/netlink.h> (stable uapi layout), spelled out so the build
 * needs no kernel headers: the musl sysroot for OpenWrt has none. */
struct td_sockaddr_nl {
    sa_family_t nl_family;
    unsigned short nl_pad;
    uint32_t nl_pid;
    uint32_t nl_groups;
};

#define NETLINK_BUF_BYTES (64 * 1024)
#define NETLINK_RECV_TIMEOUT_S 2
/* Upper bound for the close-every-fd fallback when close_range() is missing (pre-5.9
 * kernels); RLIMIT_NOFILE can be huge in containers. */
#define FD_SCAN_LIMIT 65536

static int neg_errno(void) { return errno ? -errno : -EIO; }

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? neg_errno() : 0;
}

/* An IPv4 or IPv6 socket address. */
union td_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_storage ss;
};

/* Fills *sa from an address string; returns the sockaddr length, or -EINVAL when the string is
 * neither a dotted quad nor an IPv6 address (inet_pton refuses brackets and zone ids). */
static int parse_sockaddr(const char *ip, uint16_t port, union td_sockaddr *sa)
{
    memset(sa, 0, sizeof *sa);
    if (inet_pton(AF_INET, ip, &sa->sin.sin_addr) == 1) {
        sa->sin.sin_family = AF_INET;
        sa->sin.sin_port = htons(port);
        return (int)sizeof sa->sin;
    }
    if (inet_pton(AF_INET6, ip, &sa->sin6.sin6_addr) == 1) {
        sa->sin6.sin6_family = AF_INET6;
        sa->sin6.sin6_port = htons(port);
        return (int)sizeof sa->sin6;
    }
    return -EINVAL;
}

/* Canonical text, port and family of *sa; -EAFNOSUPPORT for other families. */
static int format_sockaddr(const union td_sockaddr *sa, struct td_endpoint *out)
{
    if (sa->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &sa->sin.sin_addr, out->ip, sizeof out->ip);
        out->port = ntohs(sa->sin.sin_port);
        out->family = 4;
        return 0;
    }
    if (sa->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &sa->sin6.sin6_addr, out->ip, sizeof out->ip);
        out->port = ntohs(sa->sin6.sin6_port);
        out->family = 6;
        return 0;
    }
    return -EAFNOSUPPORT;
}

/* AF_INET or AF_INET6 of a socket (getsockname works before bind), or -errno. */
static int socket_af(int fd)
{
    union td_sockaddr sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, &sa.sa, &len) < 0)
        return neg_errno();
    return sa.sa.sa_family;
}

/* Parses ip for a call on fd: the sockaddr length, -EINVAL, or -EAFNOSUPPORT when the address
 * is of the other family than the socket (the kernel would say EINVAL or ENETUNREACH). */
static int sockaddr_for(int fd, const char *ip, uint16_t port, union td_sockaddr *sa)
{
    int len = parse_sockaddr(ip, port, sa), af;
    if (len < 0)
        return len;
    af = socket_af(fd);
    if (af < 0)
        return af;
    return af == sa->sa.sa_family ? len : -EAFNOSUPPORT;
}

/* ---- UDP ---- */

int td_udp_socket(int family)
{
    int af = family == 4 ? AF_INET : family == 6 ? AF_INET6 : -1, fd, err;
    if (af < 0)
        return -EAFNOSUPPORT;
    fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return neg_errno();
    if (af == AF_INET6 && (err = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) < 0) {
        close(fd);
        return err;
    }
    return fd;
}

int td_set_reuseport(int fd) { return set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1); }

int td_bind_to_device(int fd, const char *dev)
{
    size_t len = strlen(dev) + 1;
    return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)len) < 0 ? neg_errno() : 0;
}

/* PROBE: set DF (IPv6: never fragment locally) but ignore the cached path MTU, so PMTU discovery
 * datagrams of any size leave the host and oversized sends fail locally with EMSGSIZE only above
 * the device MTU. */
int td_set_pmtu_probe(int fd)
{
    int af = socket_af(fd);
    if (af < 0)
        return af;
    if (af == AF_INET6)
        return set_int_opt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE);
    return set_int_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
}

int td_ip_family(const char *ip)
{
    union td_sockaddr sa;
    int len = parse_sockaddr(ip, 0, &sa);
    return len < 0 ? len : sa.sa.sa_family == AF_INET6 ? 6 : 4;
}

int td_bind(int fd, const char *ip, uint16_t port)
{
    union td_sockaddr sa;
    int len = sockaddr_for(fd, ip, port, &sa);
    if (len < 0)
        return len;
    return bind(fd, &sa.sa, (socklen_t)len) < 0 ? neg_errno() : 0;
}

int td_connect(int fd, const char *ip, uint16_t port)
{
    union td_sockaddr sa;
    int len = sockaddr_for(fd, ip, port, &sa);
    if (len < 0)
        return len;
    /* UDP connect never blocks, but a signal could still interrupt it. */
    while (connect(fd, &sa.sa, (socklen_t)len) < 0) {
        if (errno != EINTR)
            return neg_errno();
    }
    return 0;
}

int td_local_port(int fd)
{
    union td_sockaddr sa;
    struct td_endpoint ep;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, &sa.sa, &len) < 0)
        return neg_errno();
    if (format_sockaddr(&sa, &ep) < 0)
        return -EAFNOSUPPORT;
    return ep.port;
}

ssize_t td_send(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do n = send(fd, buf, len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
    return n < 0 ? neg_errno() : n;
}

ssize_t td_sendto(int fd, const void *buf, size_t len, const char *ip, uint16_t port)
{
    union td_sockaddr sa;
    int slen = parse_sockaddr(ip, port, &sa), af;
    ssize_t n;
    if (slen < 0)
        return slen;
    do n = sendto(fd, buf, len, MSG_NOSIGNAL, &sa.sa, (socklen_t)slen);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    n = neg_errno();
    /* Only a failed send pays for the family check (the listener answers every datagram). Like
     * any failed sendto, a refused one has autobound an unbound socket. */
    af = socket_af(fd);
    return af >= 0 && af != sa.sa.sa_family ? -EAFNOSUPPORT : n;
}

ssize_t td_recvfrom(int fd, void *buf, size_t len, struct td_endpoint *from)
{
    union td_sockaddr sa;
    socklen_t slen = sizeof sa;
    ssize_t n;
    memset(&sa, 0, sizeof sa);
    do n = recvfrom(fd, buf, len, 0, &sa.sa, &slen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return neg_errno();
    if (format_sockaddr(&sa, from) < 0) {
        from->ip[0] = '\0';
        from->port = 0;
        from->family = 4;
    }
    return n;
}

int td_close(int fd)
{
    /* On Linux the fd is released even when close() reports EINTR; retrying would be wrong. */
    if (close(fd) < 0 && errno != EINTR)
        return neg_errno();
    return 0;
}

/* ---- netlink ---- */

int td_netlink_socket(int protocol)
{
    struct td_sockaddr_nl snl;
    struct timeval tv = { NETLINK_RECV_TIMEOUT_S, 0 };
    int fd, err;

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return neg_errno();
    if ((err = set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, NETLINK_BUF_BYTES)) < 0 ||
        (err = set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, NETLINK_BUF_BYTES)) < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
        err = neg_errno();
        goto fail;
    }
    memset(&snl, 0, sizeof snl);
    snl.nl_family = AF_NETLINK; /* nl_pid 0: the kernel assigns a unique port id */
    if (bind(fd, (struct sockaddr *)&snl, sizeof snl) < 0) {
        err = neg_errno();
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return err;
}

ssize_t td_netlink_send(int fd, const void *buf, size_t len)
{
    struct td_sockaddr_nl snl;
    ssize_t n;
    memset(&snl, 0, sizeof snl);
    snl.nl_family = AF_NETLINK;
    do n = sendto(fd, buf, len, 0, (struct sockaddr *)&snl, sizeof snl);
    while (n < 0 && errno == EINTR);
    return n < 0 ? neg_errno() : n;
}

ssize_t td_netlink_recv(int fd, void *buf, size_t len)
{
    ssize_t n;
    /* MSG_TRUNC makes recv report the real datagram length, so a too-small buffer is an
     * error instead of a silently cut message. */
    do n = recv(fd, buf, len, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : neg_errno();
    if ((size_t)n > len)
        return -EMSGSIZE;
    return n;
}

/* ---- processes ---- */

/* Moves fd to >= 3 so the dup2() onto 0/1/2 in the child cannot clobber it. Keeps CLOEXEC.
 * A negative fd (a failed open/pipe) passes through with errno untouched, so fd exhaustion
 * is reported as EMFILE, not as the EBADF of a call on fd -1. */
static int lift_fd(int fd)
{
    int nfd, saved;
    if (fd < 0 || fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    saved = errno;
    close(fd);
    errno = saved;
    return nfd;
}

static int fd_scan_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_SCAN_LIMIT)
        return FD_SCAN_LIMIT;
    return (int)rl.rlim_cur;
}

/* Child side, async-signal-safe only: close every fd >= 3 except `keep`. */
static void child_drop_fds(int keep, int scan_limit)
{
    int fd;
#ifdef SYS_close_range
    if (keep > 3)
        syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U);
    if (syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0)
        return;
#endif
    for (fd = 3; fd < scan_limit; fd++) {
        if (fd != keep)
            close(fd);
    }
}

/* Child side: default dispositions and an empty mask, so the parent's handlers (Node's,
 * QuickJS's) never run in the child. */
static void child_reset_signals(void)
{
    struct sigaction sa;
    sigset_t none;
    int sig;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Forks with all signals blocked, so no parent handler can run in the child between fork and
 * the child's reset. Returns the fork() result; errno preserved on failure. */
static pid_t fork_blocked(void)
{
    sigset_t all, old;
    pid_t pid;
    int saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    saved = errno;
    if (pid != 0)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define TD_HAVE_ADDCLOSEFROM 1
#endif
/* A process group of its own (pgid = pid: the attr's default pgroup 0), in the caller's session:
 * kill(-pid) reaches the child's whole tree, and the child stays in the caller's scheduling
 * group. A session of its own (setsid) would also give it an autogroup of its own (Linux
 * CONFIG_SCHED_AUTOGROUP, on by default for processes outside a cpu cgroup): every hook would
 * then weigh as much as the whole broker, and 32 hooks at once starve it (td_renice_group
 * below could not lower them either: nice only ranks tasks within one group). */
#define TD_SPAWN_OWN_GROUP POSIX_SPAWN_SETPGROUP

#ifndef TD_HAVE_ADDCLOSEFROM
/* Without posix_spawn_file_actions_addclosefrom_np (musl, old glibc) the child cannot close
 * fds itself, so every fd >= 3 of the parent is marked close-on-exec first. The cores open
 * everything with CLOEXEC already; this catches fds opened by others (libraries, the runtime).
 * Harmless for the parent: nothing in it relies on passing fds across exec. */
static void mark_fds_cloexec(void)
{
    int fd, limit;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    limit = fd_scan_limit();
    for (fd = 3; fd < limit; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
}
#endif

int td_argv_size(uint32_t nargs, size_t elem, size_t *bytes)
{
    /* path + args + NULL; TD_SPAWN_MAX_ARGS keeps (nargs + 2) * elem far from SIZE_MAX even
     * with a 32-bit size_t, where a length near 2^32 would otherwise wrap to a tiny size. */
    if (nargs > TD_SPAWN_MAX_ARGS || elem == 0 || elem > 64)
        return -E2BIG;
    *bytes = ((size_t)nargs + 2) * elem;
    return 0;
}

pid_t td_spawn(const char *path, char *const argv[], int capture_output, int *out_fd)
{
    extern char **environ;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    int out[2] = { -1, -1 }, rc;
    pid_t pid = -1;

    *out_fd = -1;
    if (capture_output) {
        if (pipe2(out, O_CLOEXEC) < 0)
            return neg_errno();
        out[0] = lift_fd(out[0]);
        out[1] = lift_fd(out[1]);
        if (out[0] < 0 || out[1] < 0) {
            rc = neg_errno();
            if (out[0] >= 0) close(out[0]);
            if (out[1] >= 0) close(out[1]);
            return rc;
        }
    }
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto out_pipe;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        rc = -rc;
        goto out_fa;
    }
    sigfillset(&all);
    sigemptyset(&none);
    /* stdin from /dev/null; stdout+stderr into the pipe (its own fds are CLOEXEC). */
    if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (capture_output && ((rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
                            (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 2)) != 0)) ||
#ifdef TD_HAVE_ADDCLOSEFROM
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
#endif
        /* own process group: a hook timeout can kill(-pid) the whole tree; default
         * dispositions and an empty mask: hooks see SIGPIPE/SIGTERM as usual */
        (rc = posix_spawnattr_setflags(&attr, TD_SPAWN_OWN_GROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0) {
        rc = -rc;
        goto out_attr;
    }
#ifndef TD_HAVE_ADDCLOSEFROM
    mark_fds_cloexec();
#endif
    /* CLONE_VM|CLONE_VFORK in glibc and musl: no copy of the parent's memory, and the exec
     * error (ENOENT, EACCES...) comes back as the return value with no child left behind. */
    rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    rc = rc ? -rc : 0;
out_attr:
    posix_spawnattr_destroy(&attr);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_pipe:
    if (out[1] >= 0)
        close(out[1]);
    if (rc < 0) {
        if (out[0] >= 0)
            close(out[0]);
        return rc;
    }
    if (capture_output) {
        fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
        *out_fd = out[0];
    }
    return pid;
}

#ifdef TD_LEGACY_FORK_SPAWN
/* The fork()+execv() spawn that td_spawn replaced, built only for bench/spawn.ts to compare. */
pid_t td_spawn_fork(const char *path, char *const argv[], int capture_output, int *out_fd)
{
    int devnull = -1, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    int scan_limit = fd_scan_limit(), err = 0, child_errno = 0;
    pid_t pid;
    ssize_t n;

    *out_fd = -1;
    devnull = lift_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull < 0)
        return neg_errno();
    if (capture_output) {
        if (pipe2(out, O_CLOEXEC) < 0) {
            err = neg_errno();
            goto fail;
        }
        out[0] = lift_fd(out[0]);
        out[1] = lift_fd(out[1]);
        if (out[0] < 0 || out[1] < 0) {
            err = neg_errno();
            goto fail;
        }
    }
    if (pipe2(errp, O_CLOEXEC) < 0) {
        err = neg_errno();
        goto fail;
    }
    errp[0] = lift_fd(errp[0]);
    errp[1] = lift_fd(errp[1]);
    if (errp[0] < 0 || errp[1] < 0) {
        err = neg_errno();
        goto fail;
    }
    pid = fork_blocked();
    if (pid < 0) {
        err = neg_errno();
        goto fail;
    }
    if (pid == 0) {
        int e;
        child_reset_signals();
        setsid();
        if (dup2(devnull, 0) < 0)
            goto child_fail;
        if (capture_output && (dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0))
            goto child_fail;
        child_drop_fds(errp[1], scan_limit);
        execv(path, argv);
    child_fail:
        e = errno;
        write_all(errp[1], &e, sizeof e);
        _exit(127);
    }
    close(errp[1]);
    errp[1] = -1;
    do n = read(errp[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close(errp[0]);
    errp[0] = -1;
    if (n == (ssize_t)sizeof child_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        err = child_errno ? -child_errno : -EIO;
        goto fail;
    }
    close(devnull);
    if (capture_output) {
        close(out[1]);
        fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
        *out_fd = out[0];
    }
    return pid;
fail:
    if (devnull >= 0) close(devnull);
    if (out[0] >= 0) close(out[0]);
    if (out[1] >= 0) close(out[1]);
    if (errp[0] >= 0) close(errp[0]);
    if (errp[1] >= 0) close(errp[1]);
    return err;
}
#endif

int td_pid_watch(pid_t pid)
{
#ifdef SYS_pidfd_open
    /* pidfd_open (Linux 5.3): readable once the child has exited; always close-on-exec. */
    long fd = syscall(SYS_pidfd_open, pid, 0U);
    return fd < 0 ? neg_errno() : (int)fd;
#else
    (void)pid;
    return -ENOSYS;
#endif
}

ssize_t td_read(int fd, void *buf, size_t len)
{
    ssize_t n;
    do n = read(fd, buf, len); while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : neg_errno();
    return n;
}

int td_wait_pid(pid_t pid, int *code)
{
    int status = 0;
    pid_t r;
    do r = waitpid(pid, &status, WNOHANG); while (r < 0 && errno == EINTR);
    if (r < 0)
        return neg_errno();
    if (r == 0)
        return 0;
    if (WIFEXITED(status))
        *code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        *code = 128 + WTERMSIG(status);
    else
        return 0; /* stopped/continued: only reported with WUNTRACED/WCONTINUED, not here */
    return 1;
}

int td_kill(pid_t pid, int sig) { return kill(pid, sig) < 0 ? neg_errno() : 0; }

int td_renice_group(pid_t pgid, int increment)
{
    int base, target;
    errno = 0;
    base = getpriority(PRIO_PROCESS, 0); /* -1 is a valid nice value: errno tells */
    if (base == -1 && errno != 0)
        return neg_errno();
    target = base + increment;
    if (target > 19)
        target = 19;
    if (target < -20)
        target = -20;
    if (setpriority(PRIO_PGRP, (id_t)pgid, target) < 0)
        return neg_errno();
    return 0;
}

/* ---- name resolution in a helper process ---- */

/* What the helper writes, in one write() (well below PIPE_BUF, so it is atomic). */
struct resolve_answer {
    int32_t result; /* number of addresses, or -errno */
    struct td_endpoint addrs[TD_RESOLVE_MAX_ADDRS];
};

/* Helpers still running, by pipe fd: resolveFinish reaps the helper by this pid even when it
 * died without answering (the answer cannot be the only place the pid is known). */
static struct { int fd; pid_t pid; } resolvers[TD_RESOLVE_MAX];
static int resolvers_used;

static pid_t resolver_take(int fd)
{
    int i;
    for (i = 0; i < resolvers_used; i++) {
        if (resolvers[i].fd == fd) {
            pid_t pid = resolvers[i].pid;
            resolvers[i] = resolvers[--resolvers_used];
            return pid;
        }
    }
    return -1;
}

static int eai_to_errno(int eai)
{
    switch (eai) {
    case EAI_AGAIN: return EAGAIN;
    case EAI_MEMORY: return ENOMEM;
    case EAI_FAMILY: return EAFNOSUPPORT;
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS: return EINVAL;
    case EAI_SYSTEM: return errno ? errno : EIO;
    default: return ENOENT; /* EAI_NONAME, EAI_NODATA, EAI_FAIL: the name does not resolve */
    }
}

int td_resolve_start(const char *host, const char *service)
{
    int p[2];
    pid_t pid;

    if (resolvers_used == TD_RESOLVE_MAX)
        return -EAGAIN;
    if (pipe2(p, O_CLOEXEC) < 0)
        return neg_errno();
    pid = fork_blocked();
    if (pid < 0) {
        int err = neg_errno();
        close(p[0]);
        close(p[1]);
        return err;
    }
    if (pid == 0) {
        /* Helper: a copy of the parent that must not keep its sockets alive while the
         * resolver waits for DNS. It only calls getaddrinfo and _exit. */
        struct resolve_answer ans;
        struct addrinfo hints, *res = NULL;
        int rc;
        child_reset_signals();
        child_drop_fds(p[1], fd_scan_limit());
        memset(&ans, 0, sizeof ans);
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        errno = 0;
        rc = getaddrinfo(host, service, &hints, &res);
        if (rc != 0) {
            ans.result = -eai_to_errno(rc);
        } else {
            const struct addrinfo *ai;
            for (ai = res; ai && ans.result < TD_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
                union td_sockaddr sa;
                if (ai->ai_addrlen > sizeof sa)
                    continue;
                memset(&sa, 0, sizeof sa);
                memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
                if (format_sockaddr(&sa, &ans.addrs[ans.result]) == 0)
                    ans.result++;
            }
            if (ans.result == 0)
                ans.result = -ENOENT; /* only families we cannot use */
        }
        /* res is not freed: the process exits now. */
        write_all(p[1], &ans, sizeof ans);
        _exit(0);
    }
    close(p[1]);
    /* Non-blocking, so a premature resolveFinish returns -EAGAIN instead of stalling. */
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    resolvers[resolvers_used].fd = p[0];
    resolvers[resolvers_used].pid = pid;
    resolvers_used++;
    return p[0];
}

int td_resolve_finish(int fd, struct td_endpoint *out, int max)
{
    struct resolve_answer ans;
    ssize_t n;
    pid_t pid;
    int err;
    do n = read(fd, &ans, sizeof ans); while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EWOULDBLOCK)
        return -EAGAIN; /* not done yet: fd stays open */
    err = n < 0 ? neg_errno() : -EIO;
    pid = resolver_take(fd);
    close(fd);
    /* Answered or not (EOF: the helper died), the helper has exited or is about to: reap it.
     * An fd that is no helper's pipe (pid -1) is only closed. */
    if (pid > 0 && n < 0)
        kill(pid, SIGKILL); /* a read error: the helper may still be waiting for DNS */
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof ans)
        return err; /* helper died without answering */
    if (ans.result < 0)
        return ans.result;
    if (ans.result > TD_RESOLVE_MAX_ADDRS)
        return -EIO;
    if (ans.result > max)
        ans.result = max;
    memcpy(out, ans.addrs, (size_t)ans.result * sizeof *out);
    return ans.result;
}

/* ---- limits and buffers ---- */

int td_set_recv_buffer(int fd, int bytes)
{
    int size = 0;
    socklen_t len = sizeof size;
    if (bytes < 0)
        return -EINVAL;
    /* SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0) {
        if (errno != EPERM)
            return neg_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) < 0)
            return neg_errno();
    }
    /* The kernel doubles the request for its bookkeeping and caps SO_RCVBUF at rmem_max:
     * report what it actually uses. */
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &len) < 0)
        return neg_errno();
    return size;
}

int td_raise_fd_limit(uint64_t *soft, uint64_t *hard)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return neg_errno();
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = { rl.rlim_max, rl.rlim_max };
        /* An unlimited hard limit is refused above fs.nr_open; 2^20 is its default. */
        if (setrlimit(RLIMIT_NOFILE, &want) < 0 && rl.rlim_max == RLIM_INFINITY) {
            want.rlim_cur = 1U << 20;
            if (want.rlim_cur > rl.rlim_cur)
                setrlimit(RLIMIT_NOFILE, &want);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return neg_errno();
    }
    *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    *hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
    return 0;
}

/* ---- errno names: the one table both bindings export (src/native.ts ERRNO_NAMES) ---- */

#define E(name) { #name, name }
const struct td_errno_entry td_errno_table[] = {
    E(EAGAIN), E(EINTR), E(EMSGSIZE), E(ECONNREFUSED), E(EINVAL), E(EEXIST), E(ENOENT),
    E(EAFNOSUPPORT), E(ENODEV), E(EPROTONOSUPPORT), E(ENOBUFS), E(EPERM), E(EADDRINUSE),
    E(EHOSTUNREACH), E(ENETUNREACH), E(EBADF), E(ECHILD), E(EACCES), E(ESRCH), E(EMFILE),
    E(ENOSYS), E(E2BIG), E(ENOMEM), E(EADDRNOTAVAIL), E(ENFILE),
};
#undef E
const size_t td_errno_count = sizeof td_errno_table / sizeof td_errno_table[0];

/* ---- syslog ---- */

void td_syslog(int priority, const char *ident, const char *message)
{
    /* openlog keeps the pointer, so the ident lives in static storage. */
    static char current[64];
    static int opened;
    if (!opened || strncmp(current, ident, sizeof current - 1) != 0) {
        strncpy(current, ident, sizeof current - 1);
        current[sizeof current - 1] = '\0';
        openlog(current, LOG_PID, LOG_DAEMON);
        opened = 1;
    }
    syslog(priority, "%s", message);
}

/* ---- systemd notification (sd_notify protocol without libsystemd) ---- */

#include <stdlib.h>
#include <stddef.h>
#include <sys/un.h>

/* Sends `state` ("READY=1", "STATUS=...", "STOPPING=1") as one datagram to $NOTIFY_SOCKET (a path,
 * or an abstract name starting with '@'). Returns 0 when NOTIFY_SOCKET is unset (not under
 * systemd), 1 when sent, or -errno. */
int td_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    size_t len, slen;
    socklen_t alen;
    int fd, r;
    if (!path || !path[0])
        return 0;
    len = strlen(path);
    if (len >= sizeof sun.sun_path || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    slen = strlen(state);
    r = (int)sendto(fd, state, slen, MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
    r = r < 0 ? -errno : 1;
    close(fd);
    return r;
}

/* ---- batched UDP receive (the broker's datagram hot path) ---- */

/* Room for the SCM_TIMESTAMPNS control message (and one more of any kind, which is skipped). */
#define TD_RX_CMSG_SPACE (CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int)))

int td_rx_timestamps(int fd)
{
#ifdef SO_TIMESTAMPNS
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0 ? -errno : 0;
#else
    (void)fd;
    return -ENOSYS;
#endif
}

/* ms between the kernel's receive timestamp in msg's control data and now (both CLOCK_REALTIME;
 * now is read once per batch, at the first datagram that carries a timestamp: tunnel sockets have
 * none, and in a guest without a TSC clocksource every clock read is a syscall), 0 when the clock
 * went back, -1 without one. */
static int32_t rx_queued_ms(struct msghdr *msg, struct timespec *now)
{
#ifdef SO_TIMESTAMPNS
    struct cmsghdr *c;
    if (msg->msg_flags & MSG_CTRUNC)
        return -1;
    for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        struct timespec ts;
        int64_t ms;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS || c->cmsg_len != CMSG_LEN(sizeof ts))
            continue;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        if (now->tv_sec == 0 && now->tv_nsec == 0)
            clock_gettime(CLOCK_REALTIME, now);
        ms = ((int64_t)now->tv_sec - (int64_t)ts.tv_sec) * 1000 + ((int64_t)now->tv_nsec - (int64_t)ts.tv_nsec) / 1000000;
        return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
    }
#else
    (void)msg;
    (void)now;
#endif
    return -1;
}

/* recvmmsg(MSG_DONTWAIT) of up to max (<= TD_RECV_BATCH_MAX) datagrams from fd into consecutive
 * slots of `slot` bytes of buf; out[i] describes datagram i. One syscall however many are queued,
 * and none more to learn that the queue is empty (fewer than max returned). */
int td_recv_batch(int fd, uint8_t *buf, size_t slot, unsigned max, struct td_dgram *out)
{
    struct mmsghdr msgs[TD_RECV_BATCH_MAX];
    struct iovec iov[TD_RECV_BATCH_MAX];
    struct sockaddr_storage from[TD_RECV_BATCH_MAX];
    union {
        struct cmsghdr align;
        char buf[TD_RX_CMSG_SPACE];
    } ctrl[TD_RECV_BATCH_MAX];
    struct timespec now = { 0, 0 };
    unsigned i;
    int n;
    if (max > TD_RECV_BATCH_MAX)
        max = TD_RECV_BATCH_MAX;
    if (max == 0 || slot == 0)
        return -EINVAL;
    memset(msgs, 0, sizeof msgs[0] * max);
    for (i = 0; i < max; i++) {
        iov[i].iov_base = buf + (size_t)i * slot;
        iov[i].iov_len = slot;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        msgs[i].msg_hdr.msg_control = ctrl[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i].buf;
    }
    do n = recvmmsg(fd, msgs, max, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : neg_errno();
    for (i = 0; i < (unsigned)n; i++) {
        struct td_dgram *d = &out[i];
        memset(d, 0, sizeof *d);
        d->queued_ms = rx_queued_ms(&msgs[i].msg_hdr, &now);
        d->len = msgs[i].msg_len;
        d->truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        if (from[i].ss_family == AF_INET && msgs[i].msg_hdr.msg_namelen >= sizeof(struct sockaddr_in)) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&from[i];
            d->family = 4;
            d->port = ntohs(sin->sin_port);
            memcpy(d->addr, &sin->sin_addr, 4);
        } else if (from[i].ss_family == AF_INET6 && msgs[i].msg_hdr.msg_namelen >= sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&from[i];
            d->family = 6;
            d->port = ntohs(sin6->sin6_port);
            memcpy(d->addr, &sin6->sin6_addr, 16);
        }
    }
    return n;
}

/* sendmmsg of n (<= TD_SEND_BATCH_MAX) datagrams on a connected socket: datagram i is lens[i]
 * bytes, the datagrams consecutive in buf. */
int td_send_batch(int fd, const uint8_t *buf, const uint32_t *lens, unsigned n)
{
    return td_send_batch_to(fd, buf, lens, NULL, n);
}

/* The destination of td_send_batch_to: TD_DEST_BYTES at dest (family 4 or 6, 0, port in
 * network order, address bytes) as a sockaddr; its length, or 0 when the family is neither. */
static socklen_t dest_sockaddr(const uint8_t *dest, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (dest[0] == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_port, dest + 2, 2);
        memcpy(&sin->sin_addr, dest + 4, 4);
        return sizeof *sin;
    }
    if (dest[0] == 6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_port, dest + 2, 2);
        memcpy(&sin6->sin6_addr, dest + 4, 16);
        return sizeof *sin6;
    }
    return 0;
}

/* td_send_batch with a destination per datagram (dests: n * TD_DEST_BYTES, see td_core.h), on
 * an unconnected socket; dests NULL: a connected socket. */
int td_send_batch_to(int fd, const uint8_t *buf, const uint32_t *lens, const uint8_t *dests, unsigned n)
{
    struct mmsghdr msgs[TD_SEND_BATCH_MAX];
    struct iovec iov[TD_SEND_BATCH_MAX];
    struct sockaddr_storage to[TD_SEND_BATCH_MAX];
    size_t at = 0;
    unsigned i;
    int r;
    if (n == 0 || n > TD_SEND_BATCH_MAX)
        return -EINVAL;
    memset(msgs, 0, sizeof msgs[0] * n);
    for (i = 0; i < n; i++) {
        iov[i].iov_base = (void *)(buf + at);
        iov[i].iov_len = lens[i];
        at += lens[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if (dests) {
            socklen_t len = dest_sockaddr(dests + (size_t)i * TD_DEST_BYTES, &to[i]);
            if (len == 0)
                return -EAFNOSUPPORT;
            msgs[i].msg_hdr.msg_name = &to[i];
            msgs[i].msg_hdr.msg_namelen = len;
        }
    }
    do r = sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? neg_errno() : r;
}
