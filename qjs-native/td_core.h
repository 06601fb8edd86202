/* td_core: the syscall-shaped C core shared by the QuickJS module and the Node-API addon.
 * Every function returns a non-negative result or -errno. No function keeps hidden state
 * except the syslog ident and the pids of running resolver helpers. Addresses travel as text
 * (an IPv4 dotted quad or an IPv6 address without brackets or zone id), parsed here. */
#ifndef TD_CORE_H
#define TD_CORE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest text form of an address plus the NUL (INET6_ADDRSTRLEN). */
#define TD_IP_TEXT_MAX 46
/* An address and port as the bindings pass them to JS: canonical text (inet_ntop), port in host
 * order, family 4 or 6. */
struct td_endpoint {
    char ip[TD_IP_TEXT_MAX];
    uint16_t port;
    uint8_t family;
};

/* family 4: AF_INET; 6: AF_INET6 with IPV6_V6ONLY=1 (a v6 socket never sees v4 traffic, so v4
 * and v6 listeners on one port do not collide); anything else -EAFNOSUPPORT. */
int td_udp_socket(int family);
int td_set_reuseport(int fd);
int td_bind_to_device(int fd, const char *dev);
/* IP_MTU_DISCOVER or IPV6_MTU_DISCOVER = PROBE, by the socket's family. */
int td_set_pmtu_probe(int fd);
/* The family (4 or 6) an address string parses as, or -EINVAL (brackets, zone ids, names). */
int td_ip_family(const char *ip);
/* bind/connect/sendto take an address string of either family: -EINVAL when it does not parse,
 * -EAFNOSUPPORT when it is of the other family than the socket. */
int td_bind(int fd, const char *ip, uint16_t port);
int td_connect(int fd, const char *ip, uint16_t port);
int td_local_port(int fd);
ssize_t td_send(int fd, const void *buf, size_t len);
ssize_t td_sendto(int fd, const void *buf, size_t len, const char *ip, uint16_t port);
ssize_t td_recvfrom(int fd, void *buf, size_t len, struct td_endpoint *from);
int td_close(int fd);

/* One datagram read by td_recv_batch: its length (bytes in its slot), whether it was longer than
 * the slot (then cut), its source: family 4 or 6 (0: unknown), port in host order, address
 * bytes in network order (4 or 16 used), and how long it waited in the socket's receive queue
 * (ms, from the kernel's receive timestamp; -1 when the socket has no td_rx_timestamps). */
struct td_dgram {
    uint32_t len;
    uint8_t truncated;
    uint8_t family;
    uint16_t port;
    uint8_t addr[16];
    int32_t queued_ms;
};
/* Most datagrams one td_recv_batch call reads. */
#define TD_RECV_BATCH_MAX 64
/* recvmmsg(MSG_DONTWAIT) of up to max datagrams from fd into slots of `slot` bytes of buf (buf
 * holds max * slot bytes); fills out[0..n). Returns n, 0 when nothing is queued, or -errno (a
 * pending socket error, e.g. -ECONNREFUSED after an ICMP port unreachable). */
int td_recv_batch(int fd, uint8_t *buf, size_t slot, unsigned max, struct td_dgram *out);
/* SO_TIMESTAMPNS on: the kernel stamps each datagram on arrival, td_recv_batch reports its
 * time in the receive queue (struct td_dgram queued_ms). 0 or -errno. */
int td_rx_timestamps(int fd);
/* Most datagrams one td_send_batch call sends. */
#define TD_SEND_BATCH_MAX 64
/* sendmmsg(MSG_DONTWAIT) of n datagrams on a connected socket, datagram i lens[i] bytes, all
 * consecutive in buf. Returns how many were sent: fewer than n when one failed (it and those
 * after it were not sent; sending it alone gives its error), or -errno when the first failed. */
int td_send_batch(int fd, const uint8_t *buf, const uint32_t *lens, unsigned n);
/* Bytes of one destination of td_send_batch_to: family (4 or 6), 0, port (network order),
 * address (4 or 16 bytes, network order). */
#define TD_DEST_BYTES 20
/* td_send_batch on an unconnected socket, datagram i to the destination at dests + i *
 * TD_DEST_BYTES (-EAFNOSUPPORT when one has another family; nothing is sent then). */
int td_send_batch_to(int fd, const uint8_t *buf, const uint32_t *lens, const uint8_t *dests, unsigned n);

int td_netlink_socket(int protocol);
ssize_t td_netlink_send(int fd, const void *buf, size_t len);
ssize_t td_netlink_recv(int fd, void *buf, size_t len);

/* Most arguments a binding passes to td_spawn (hooks take a handful). */
#define TD_SPAWN_MAX_ARGS 4096
/* Bytes of a NULL-terminated argv of path + nargs strings with elements of elem bytes, or
 * -E2BIG (never a wrapped size, also with a 32-bit size_t). */
int td_argv_size(uint32_t nargs, size_t elem, size_t *bytes);
/* posix_spawn (vfork semantics: the parent's memory is not copied) of path with argv, no
 * shell; argv[0] must be path; argv NULL-terminated. stdin is /dev/null; with capture_output
 * stdout+stderr go into a pipe whose non-blocking read end is *out_fd (else -1, the child
 * inherits them). Only fds 0-2 survive, signals are default and unblocked. The child runs in
 * its own process group (in the caller's session), so kill(-pid) reaches its whole tree. An exec failure (e.g. a
 * missing path) is reported as -errno (-ENOENT) with no child left behind. */
pid_t td_spawn(const char *path, char *const argv[], int capture_output, int *out_fd);
#ifdef TD_LEGACY_FORK_SPAWN
/* The former fork()+execv() implementation, for bench/spawn.ts only. */
pid_t td_spawn_fork(const char *path, char *const argv[], int capture_output, int *out_fd);
#endif
/* pidfd_open(pid): an fd (close-on-exec) that becomes readable when the child exits, then
 * td_wait_pid reaps it. -ENOSYS on kernels before 5.3 (callers poll td_wait_pid instead). */
int td_pid_watch(pid_t pid);
ssize_t td_read(int fd, void *buf, size_t len);
/* 1 = exited (status in *code: exit code or 128+signal), 0 = still running, <0 = -errno */
int td_wait_pid(pid_t pid, int *code);
int td_kill(pid_t pid, int sig);
/* setpriority(PRIO_PGRP, pgid): every process of the group gets the caller's nice value plus
 * increment (clamped to -20..19); 0 or -errno (-ESRCH: the group is gone). For a child of
 * td_spawn right after it returned: what the child forked meanwhile is in its group too. */
int td_renice_group(pid_t pgid, int increment);

/* At most this many resolver helpers at once (-EAGAIN beyond). */
#define TD_RESOLVE_MAX 32
/* At most this many addresses of one answer are kept (the rest are dropped). */
#define TD_RESOLVE_MAX_ADDRS 16
/* getaddrinfo(host, service, AF_UNSPEC, SOCK_DGRAM) in a helper process. */
int td_resolve_start(const char *host, const char *service);
/* The number of addresses (>= 1) written to out[0..max) in getaddrinfo's order, -errno otherwise
 * (fd closed and helper reaped), or -EAGAIN when the helper has not answered yet (fd stays
 * open). */
int td_resolve_finish(int fd, struct td_endpoint *out, int max);

/* SO_RCVBUFFORCE (SO_RCVBUF if not permitted); returns the effective size or -errno. */
int td_set_recv_buffer(int fd, int bytes);
/* Raises the soft RLIMIT_NOFILE to the hard limit; fills the limits now in force
 * (UINT64_MAX: unlimited). 0 or -errno. */
int td_raise_fd_limit(uint64_t *soft, uint64_t *hard);

/* errno names and values of the platform, exported by both bindings as `errno`. */
struct td_errno_entry {
    const char *name;
    int value;
};
extern const struct td_errno_entry td_errno_table[];
extern const size_t td_errno_count;

void td_syslog(int priority, const char *ident, const char *message);
/* sd_notify(3) protocol: 0 without NOTIFY_SOCKET, 1 when sent, -errno. */
int td_sd_notify(const char *state);
#endif
