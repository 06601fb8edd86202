/* Toolchain probe for the ath79 target (24Kc, no FPU): double arithmetic that the compiler
 * cannot fold (inputs from argv/volatile) plus a UDP round trip on 127.0.0.1.
 * Prints "PROBE OK ..." and exits 0, or prints what failed and exits 1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile double seed = 1.5;

int main(int argc, char **argv) {
  double x = seed * (double)(argc + 1);           /* 3.0 with no arguments */
  double acc = 0;
  for (int i = 1; i <= 20; i++) acc += x / (double)i - (double)i * 0.25;
  long scaled = (long)(acc * 1000.0);             /* __fixdfsi */
  float f = (float)acc;                           /* __truncdfsf2 */
  char num[64];
  snprintf(num, sizeof num, "%.4f", acc);         /* musl's printf float path */
  if (scaled != -41706 || strcmp(num, "-41.7068") != 0 || f > -41.7f) {
    printf("PROBE FAIL float: acc=%s scaled=%ld\n", num, scaled);
    return 1;
  }

  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) < 0) {
    perror("PROBE FAIL udp setup");
    return 1;
  }
  const char msg[] = "td-mips-probe";
  char buf[64];
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  if (sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&a, sizeof a) != (ssize_t)sizeof msg) {
    perror("PROBE FAIL sendto");
    return 1;
  }
  ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
  if (n != (ssize_t)sizeof msg || memcmp(buf, msg, sizeof msg) != 0 || from.sin_port != a.sin_port) {
    printf("PROBE FAIL udp: got %zd bytes\n", n);
    return 1;
  }
  close(s);
  printf("PROBE OK double=%s udp=%zd bytes via 127.0.0.1:%u\n", num, n, ntohs(a.sin_port));
  return 0;
}
