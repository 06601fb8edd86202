// The floor of a broker's idle cost (docs/performance.md "Broker idle"): a minimal program that
// takes over the tunnels of a broker that was just killed (their control traffic: the kernel
// tunnels went with the broker's sockets) and sends and receives the datagrams the protocol asks
// for, with no other work: every tunnel's keepalive every 5 s (8 bytes padded to 12, spec §2.4.5),
// a PMTUD_ACK for every client probe, everything else read and dropped. What this costs is the
// kernel's (syscalls, UDP, the peer namespace's receive path behind the veth) plus the least a
// user-space program can add.
//   idle-floor [--grid] < tunnels      tunnels: lines "local_ip local_port peer_ip peer_port"
// Default: the broker's syscall pattern (main): one connected socket per tunnel, each tunnel's
// keepalive at its own phase (the first 1-5 s from start), one send per keepalive, one wake-up per
// 250 ms at most (the timer slack), epoll + recvmmsg per readable socket, one clock reading per
// wake-up. --grid: keepalives on a 1 s grid (tunnel i in slot i % 5), each slot's keepalives in
// one sendmmsg on an unconnected socket bound to the same local address and port (the listener).
// Runs until SIGTERM/SIGINT; counts on stderr then.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TUNNELS 20000
#define BATCH 64
#define PERIOD_MS 5000
#define SLACK_MS 250
#define GRID_MS 1000

struct tunnel {
  int fd;
  struct sockaddr_storage peer;
  socklen_t peerlen;
  int64_t next;
  uint16_t seq;
};

static struct tunnel tunnels[MAX_TUNNELS];
static int ntunnels;
static volatile sig_atomic_t stop;
static unsigned long n_sent, n_recv, n_acks, n_sendcalls, n_wakeups;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int to_sockaddr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return AF_INET6;
  }
  return -1;
}

static int bound_socket(const char *ip, int port, const struct sockaddr_storage *peer, socklen_t peerlen) {
  struct sockaddr_storage local;
  socklen_t llen;
  int fam = to_sockaddr(ip, port, &local, &llen);
  if (fam < 0) return -1;
  int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&local, llen) < 0 || (peer && connect(fd, (const struct sockaddr *)peer, peerlen) < 0)) {
    fprintf(stderr, "idle-floor: socket %s:%d: %s\n", ip, port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static void keepalive_bytes(uint8_t out[12], uint16_t seq) {
  memset(out, 0, 12);
  out[0] = 0x80; out[1] = 0x73; out[2] = 0xa7; out[3] = 1; out[4] = 0x05; out[5] = 2;
  out[6] = seq >> 8; out[7] = seq & 0xff;
}

// a client probe (type 0x06) gets PMTUD_ACK with its UDP payload length; nothing else is answered
static void answer(int fd, const uint8_t *d, size_t n) {
  if (n < 6 || d[0] != 0x80 || d[1] != 0x73 || d[2] != 0xa7 || d[4] != 0x06) return;
  uint8_t ack[12] = {0x80, 0x73, 0xa7, 1, 0x07, 2, (uint8_t)(n >> 8), (uint8_t)(n & 0xff)};
  if (send(fd, ack, sizeof ack, 0) == (ssize_t)sizeof ack) n_acks++;
  n_sendcalls++;
}

int main(int argc, char **argv) {
  int grid = argc > 1 && strcmp(argv[1], "--grid") == 0;
  char lip[64], pip[64];
  int lport, pport, listener = -1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  srand(getpid());
  int64_t start = now_ms();
  while (ntunnels < MAX_TUNNELS && scanf("%63s %d %63s %d", lip, &lport, pip, &pport) == 4) {
    struct tunnel *t = &tunnels[ntunnels];
    if (to_sockaddr(pip, pport, &t->peer, &t->peerlen) < 0) continue;
    if (listener < 0 && grid && (listener = bound_socket(lip, lport, NULL, 0)) < 0) return 1;
    if ((t->fd = bound_socket(lip, lport, &t->peer, t->peerlen)) < 0) return 1;
    t->next = grid ? (start / GRID_MS + 1 + ntunnels % 5) * GRID_MS : start + 1000 + rand() % 4000;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)ntunnels};
    epoll_ctl(ep, EPOLL_CTL_ADD, t->fd, &ev);
    ntunnels++;
  }
  fprintf(stderr, "idle-floor: %d tunnels%s\n", ntunnels, grid ? ", keepalives on a 1 s grid, one sendmmsg per slot" : "");
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  static uint8_t bufs[BATCH][2048];
  static struct mmsghdr msgs[MAX_TUNNELS > BATCH ? MAX_TUNNELS : BATCH];
  static struct iovec iovs[MAX_TUNNELS > BATCH ? MAX_TUNNELS : BATCH];
  static uint8_t kas[MAX_TUNNELS][12];
  struct epoll_event evs[256];
  int64_t next_wake = start;
  while (!stop) {
    int64_t earliest = INT64_MAX;
    for (int i = 0; i < ntunnels; i++) if (tunnels[i].next < earliest) earliest = tunnels[i].next;
    int timeout = earliest == INT64_MAX ? -1 : (int)(earliest > next_wake ? earliest - next_wake : 0);
    int n = epoll_wait(ep, evs, 256, timeout);
    n_wakeups++;
    int64_t now = now_ms();
    next_wake = now;
    for (int e = 0; e < n; e++) {
      struct tunnel *t = &tunnels[evs[e].data.u32];
      for (int i = 0; i < BATCH; i++) {
        iovs[i].iov_base = bufs[i]; iovs[i].iov_len = sizeof bufs[i];
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iovs[i]; msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = recvmmsg(t->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
      for (int i = 0; i < r; i++) {
        n_recv++;
        answer(t->fd, bufs[i], msgs[i].msg_len);
      }
    }
    // what is due within the slack goes out now, as the broker does
    int k = 0;
    for (int i = 0; i < ntunnels; i++) {
      struct tunnel *t = &tunnels[i];
      if (t->next > now + SLACK_MS) continue;
      keepalive_bytes(kas[i], t->seq++);
      while (t->next <= now + SLACK_MS) t->next += PERIOD_MS;
      if (!grid) {
        if (send(t->fd, kas[i], 12, 0) == 12) n_sent++;
        n_sendcalls++;
        continue;
      }
      iovs[k].iov_base = kas[i]; iovs[k].iov_len = 12;
      memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
      msgs[k].msg_hdr.msg_iov = &iovs[k]; msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_name = &t->peer; msgs[k].msg_hdr.msg_namelen = t->peerlen;
      k++;
    }
    for (int off = 0; off < k;) {
      int r = sendmmsg(listener, msgs + off, k - off, 0);
      n_sendcalls++;
      if (r <= 0) break;
      n_sent += r;
      off += r;
    }
  }
  fprintf(stderr, "idle-floor: %lu keepalives sent, %lu datagrams received, %lu ACKs, %lu send calls, %lu wake-ups\n",
          n_sent, n_recv, n_acks, n_sendcalls, n_wakeups);
  return 0;
}
