/* td_core: the syscall-shaped C core shared by the QuickJS module and the Node-API addon.
 * Every function returns a non-negative result or -errno. No function keeps hidden state
 * except the syslog ident. IPv4 addresses are in network byte order (uint32_t). */
#ifndef TD_CORE_H
#define TD_CORE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int td_udp_socket(void);
int td_set_reuseport(int fd);
int td_bind_to_device(int fd, const char *dev);
int td_set_pmtu_probe(int fd);
int td_bind4(int fd, uint32_t addr, uint16_t port);
int td_connect4(int fd, uint32_t addr, uint16_t port);
int td_local_port(int fd);
ssize_t td_send(int fd, const void *buf, size_t len);
ssize_t td_sendto4(int fd, const void *buf, size_t len, uint32_t addr, uint16_t port);
ssize_t td_recvfrom4(int fd, void *buf, size_t len, uint32_t *addr, uint16_t *port);
int td_close(int fd);

int td_netlink_socket(int protocol);
ssize_t td_netlink_send(int fd, const void *buf, size_t len);
ssize_t td_netlink_recv(int fd, void *buf, size_t len);

/* argv[0] must be path; argv NULL-terminated. *out_fd = non-blocking pipe read end or -1.
 * The child runs in its own session (setsid), so kill(-pid) reaches its whole tree.
 * An execv failure (e.g. missing path) is reported as -errno (-ENOENT) and the child is reaped. */
pid_t td_spawn(const char *path, char *const argv[], int capture_output, int *out_fd);
ssize_t td_read(int fd, void *buf, size_t len);
/* 1 = exited (status in *code: exit code or 128+signal), 0 = still running, <0 = -errno */
int td_wait_pid(pid_t pid, int *code);
int td_kill(pid_t pid, int sig);

int td_resolve_start(const char *host, const char *service);
/* 0 on success with *addr and *port filled (network/host order), -errno otherwise (fd closed and
 * helper reaped), or -EAGAIN when the helper has not answered yet (fd stays open). */
int td_resolve_finish(int fd, uint32_t *addr, uint16_t *port);

void td_syslog(int priority, const char *ident, const char *message);
/* sd_notify(3) protocol: 0 without NOTIFY_SOCKET, 1 when sent, -errno. */
int td_sd_notify(const char *state);
#endif
