/* Packet source of `make bench-ports` (test/vm/bench-ports.sh): the client end of one L2TPv3/UDP
 * tunnel reduced to its data packets. A UDP socket bound to SRC:SPORT and connected to DST:DPORT
 * sends L2TPv3 data frames (spec: flags/version 0x0003, reserved, the receiver's session id, the
 * 4-byte default L2-specific sublayer, then an Ethernet frame) as fast as sendmmsg() takes them,
 * for SECONDS, then prints what it sent. The Ethernet destination is not the receiving
 * interface's MAC, so the receiver drops each frame right after the tunnel has delivered it.
 * (pktgen cannot drive an l2tp_eth device: it transmits shared skbs, which L2TP's skb_cow_head()
 * refuses with a BUG on 6.1.)
 *
 * Usage: port-flood SRC SPORT DST DPORT SESSION_ID SECONDS FRAME_BYTES
 * Exit: 0 after the time is up, 1 on a socket error, 2 on bad arguments. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define L2TP_HDR 12
#define MAX_FRAME 1400

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa) {
  char *end;
  long p = strtol(port, &end, 10);
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) return -1;
  sa->sin_port = htons((uint16_t)p);
  return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
  struct sockaddr_in src, dst;
  if (argc != 8 || parse_addr(argv[1], argv[2], &src) || parse_addr(argv[3], argv[4], &dst)) {
    fprintf(stderr, "usage: port-flood SRC SPORT DST DPORT SESSION_ID SECONDS FRAME_BYTES\n");
    return 2;
  }
  unsigned long sid = strtoul(argv[5], NULL, 10);
  double secs = atof(argv[6]);
  int frame = atoi(argv[7]);
  if (secs <= 0 || frame < 60 || frame > MAX_FRAME) {
    fprintf(stderr, "port-flood: SECONDS must be > 0 and FRAME_BYTES 60..%d\n", MAX_FRAME);
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
      connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
    fprintf(stderr, "port-flood: socket %s:%s -> %s:%s: %s\n", argv[1], argv[2], argv[3], argv[4], strerror(errno));
    return 1;
  }

  static unsigned char pkt[L2TP_HDR + MAX_FRAME];
  size_t len = L2TP_HDR + (size_t)frame;
  pkt[1] = 0x03; /* T=0 (data), version 3 */
  pkt[4] = (unsigned char)(sid >> 24);
  pkt[5] = (unsigned char)(sid >> 16);
  pkt[6] = (unsigned char)(sid >> 8);
  pkt[7] = (unsigned char)sid;
  /* bytes 8..11: default L2-specific sublayer, no sequence number */
  static const unsigned char eth[14] = {0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x98, 0x08, 0x00};
  memcpy(pkt + L2TP_HDR, eth, sizeof(eth));

  struct iovec iov = {.iov_base = pkt, .iov_len = len};
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  unsigned long long sent = 0, errors = 0;
  double t0 = now_s(), t = t0;
  while (t - t0 < secs) {
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n > 0) {
      sent += (unsigned long long)n;
    } else if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED || errno == EINTR)) {
      errors++;
    } else if (n < 0) {
      fprintf(stderr, "port-flood: sendmmsg: %s\n", strerror(errno));
      return 1;
    }
    t = now_s();
  }
  printf("port-flood: sent %llu packets in %.3f s (%.0f pps), %llu failed sends\n", sent, t - t0,
         (double)sent / (t - t0), errors);
  close(fd);
  return 0;
}
