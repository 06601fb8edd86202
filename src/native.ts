// The syscall-shaped surface of qjs-native/td_core.c, identical in both bindings:
// the QuickJS module "tdnative" (qjs-native/td_quickjs.c) and the Node-API addon
// build/node/tdnative.node (qjs-native/td_napi.c).
//
// Conventions: every call returns a non-negative result or a negative errno value
// (e.g. -90 for EMSGSIZE on x86). Nothing throws except on argument type errors.
// Addresses travel as strings: an IPv4 dotted quad or an IPv6 address in text form, without
// brackets or zone id (the calls pick the sockaddr by what the string parses as). Byte buffers
// are Uint8Array.

/** The errno names both bindings export (from td_errno_table in qjs-native/td_core.c, the one
 *  list of them; test/unit/native.test.ts checks the two agree). Values differ per platform. */
export const ERRNO_NAMES = [
  'EAGAIN', 'EINTR', 'EMSGSIZE', 'ECONNREFUSED', 'EINVAL', 'EEXIST', 'ENOENT',
  'EAFNOSUPPORT', 'ENODEV', 'EPROTONOSUPPORT', 'ENOBUFS', 'EPERM', 'EADDRINUSE',
  'EHOSTUNREACH', 'ENETUNREACH', 'EBADF', 'ECHILD', 'EACCES', 'ESRCH', 'EMFILE',
  'ENOSYS', 'E2BIG', 'ENOMEM', 'EADDRNOTAVAIL', 'ENFILE',
] as const;
export type ErrnoName = (typeof ERRNO_NAMES)[number];
export type ErrnoTable = Record<ErrnoName, number>;

/** IP version of a socket or an address. */
export type IpFamily = 4 | 6;

/** Source address filled in by recvFrom (ip in canonical text form, inet_ntop). `family` is
 *  always set by the bindings; absent (in hand-made endpoints) means 4. */
export interface Endpoint {
  ip: string;
  port: number;
  family?: IpFamily;
}

/** One address of a finished name resolution; `family` absent means 4. */
export interface Resolved {
  ip: string;
  port: number;
  family?: IpFamily;
}

/** What resolveFinish returns: the first IPv4 address (what callers of the former IPv4-only
 *  resolver got; the first address when there is no IPv4 one), and every address getaddrinfo
 *  returned, in its order (at most 16). */
export interface Resolution extends Resolved {
  all: Resolved[];
}

export interface Native {
  /** socket(AF_INET or AF_INET6, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC); family 4 when absent.
   *  AF_INET6 sockets get IPV6_V6ONLY=1. Returns fd, or -EAFNOSUPPORT (a host without IPv6). */
  udpSocket(family?: IpFamily): number;
  /** setsockopt(SO_REUSEPORT, 1). */
  setReusePort(fd: number): number;
  /** setsockopt(SO_BINDTODEVICE, dev) (length includes the NUL). */
  bindToDevice(fd: number, dev: string): number;
  /** setsockopt IP_MTU_DISCOVER = IP_PMTUDISC_PROBE, or IPV6_MTU_DISCOVER = IPV6_PMTUDISC_PROBE
   *  on an AF_INET6 socket. */
  setPmtuProbe(fd: number): number;
  /** bind/connect/sendTo: -EINVAL when ip does not parse (brackets, zone ids, names),
   *  -EAFNOSUPPORT when it is of the other family than the socket. */
  bind(fd: number, ip: string, port: number): number;
  connect(fd: number, ip: string, port: number): number;
  /** getsockname port, or -errno. */
  localPort(fd: number): number;
  /** send() on a connected socket; bytes sent or -errno (EMSGSIZE, ECONNREFUSED, EINVAL...). */
  send(fd: number, data: Uint8Array): number;
  sendTo(fd: number, data: Uint8Array, ip: string, port: number): number;
  /** recvfrom() into buf; returns length (or -errno, -EAGAIN when empty) and fills `from`. */
  recvFrom(fd: number, buf: Uint8Array, from: Endpoint): number;
  close(fd: number): number;

  /** socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol), bound, with a 2 s receive timeout. */
  netlinkSocket(protocol: number): number;
  /** send() of one encoded netlink message to the kernel (pid 0). */
  netlinkSend(fd: number, data: Uint8Array): number;
  /** Blocking recv() of one netlink datagram (may hold several messages); -EAGAIN on timeout. */
  netlinkRecv(fd: number, buf: Uint8Array): number;

  /** posix_spawn (vfork semantics, no copy of the caller's memory) of path with
   *  [path, ...args], without a shell; the child gets stdin from /dev/null and stdout+stderr
   *  into a pipe whose non-blocking read end is returned as `outFd` (-1 if captureOutput is
   *  false, then the child inherits stdout/stderr). Only fds 0-2 reach the child; it starts
   *  with default signals in its own process group, in the caller's session and scheduling
   *  group (kill(-pid) ends its tree). Returns -errno on
   *  failure, including exec failures (-ENOENT for a missing path); -E2BIG for > 4096 args. */
  spawn(path: string, args: string[], captureOutput: boolean): { pid: number; outFd: number } | number;
  /** read() from a spawn output pipe (bytes read, 0 at EOF, -EAGAIN when nothing yet), or one
   *  datagram from a connected socket (the client driver: no source address to convert). */
  read(fd: number, buf: Uint8Array): number;
  /** waitpid(pid, WNOHANG): null while running; exit code, or 128+signal when killed. */
  waitPid(pid: number): number | null;
  kill(pid: number, signal: number): number;
  /** setpriority(PRIO_PGRP): the processes of group pgid (a spawned child's pid) get this
   *  process's nice value + increment (clamped to 19); 0 or -errno (-ESRCH: group gone). */
  reniceGroup(pgid: number, increment: number): number;
  /** pidfd_open(pid): an fd that becomes readable when the child exits (then waitPid reaps
   *  it; close the fd afterwards), or -errno: -ENOSYS before Linux 5.3 (poll waitPid then). */
  pidWatch(pid: number): number;

  /** Starts getaddrinfo(host, service, AF_UNSPEC, SOCK_DGRAM) in a child process; returns the
   *  read end of a pipe (becomes readable when done) or -errno. */
  resolveStart(host: string, service: string): number;
  /** Reads the answer from that pipe and closes it (see Resolution), or -errno (-ENOENT when
   *  the name does not resolve). Reaps the helper process. */
  resolveFinish(fd: number): Resolution | number;

  /** SO_RCVBUFFORCE (SO_RCVBUF if not permitted); returns the effective size or -errno. */
  setRecvBuffer(fd: number, bytes: number): number;
  /** SO_TIMESTAMPNS: the batched reader then reports how long each datagram of fd waited in
   *  its receive queue (DatagramBatch.queuedMs). Node binding only (the broker); 0 or -errno. */
  setRxTimestamps?(fd: number): number;
  /** Raises the soft RLIMIT_NOFILE to the hard limit; returns the limits now in force
   *  (Infinity: unlimited) or -errno. */
  raiseFdLimit(): { soft: number; hard: number } | number;

  /** syslog(3) with ident set by openlog on first use (LOG_DAEMON). */
  syslog(priority: number, ident: string, message: string): void;
  /** strerror(errno) of the C library the binary runs on. */
  strerror(errno: number): string;
  /** Signal numbers that differ between platforms (MIPS differs from x86). */
  signals: { SIGUSR1: number };
  /** Errno numbers of the platform (MIPS differs from x86), names as in ERRNO_NAMES. */
  errno: ErrnoTable;
  /** sd_notify(3) to $NOTIFY_SOCKET ("READY=1", "STATUS=...", "STOPPING=1"): 0 when not under
   *  systemd, 1 when sent, or -errno. Node addon only (the client does not run under systemd). */
  sdNotify?(state: string): number;
}

/** The Node addon's netlink thread (qjs-native/td_nl_worker.h), behind src/netlink/worker.ts. */
export interface NetlinkWorkerNative {
  /** Starts the thread (once); the eventfd that is readable while completions wait, or -errno. */
  netlinkWorkerStart(): number;
  /** Queues `data` for `fd`; 0 or -errno (-EAGAIN: the queue is full). */
  netlinkWorkerSubmit(fd: number, data: Uint8Array, tag: number): number;
  /** The completions waiting, in submit order: [tag, result (reply length or -errno), reply or null, ...]. */
  netlinkWorkerTake(): (number | Uint8Array | null)[];
  /** Requests queued, running or not yet taken. */
  netlinkWorkerPending(): number;
}
