// Socket holder for `make bench-ports` (test/vm/bench-ports.sh, bench/README.md "The kernel's cost
// per port"): a broker-like set of UDP sockets on ONE local address:port, as the broker keeps
// them (SO_REUSEPORT, bound, connected to the client), plus one real L2TP tunnel among them.
//
// The measured tunnel is created first, so it is the oldest socket on the port: on a kernel
// without the connected-UDP 4-tuple hash, the early-demux fast path only ever tries the newest
// socket of the port, so every other tunnel's data pays the full lookup, which scores every
// socket on the port. The measured tunnel is that "every other tunnel".
//
// Then reads target counts from stdin, one per line, and grows (or shrinks) the set of other
// sockets to that count, answering "holder: ready <n> <ms>" on stdout. EOF: closes all, exits 0.
// Modes for the other sockets (--others):
//   udp     connected UDP sockets only (what the UDP lookup sees: the same for every kind)
//   legacy  each one an L2TP tunnel with a session 1/1 (the original client without
//           FEATURE_UNIQUE_SESSION_ID): on kernels >= 6.11 these session ids collide in the
//           per-net session table
//   unique  each one an L2TP tunnel with session id = tunnel id (FEATURE_UNIQUE_SESSION_ID)
// The sessions of legacy/unique are l2tp_eth interfaces (down), one per tunnel.
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { NetlinkKernel } from '../../src/netlink/kernel.js';
import { native } from '../../src/runtime/node/native.js';

export const HELP = `Usage: node build/js/bench/port-cost/holder.js --local IP --port P --peer IP [options]
  --local IP          local address every socket binds to (the broker's address)
  --port P            local UDP port every socket binds to
  --peer IP           peer address of every socket (peers differ by port)
  --peer-port P       peer port of the measured tunnel (default 30000)
  --others-port P     peer port of other socket i = P + i (default 31000; i < 34000)
  --others MODE       udp | legacy | unique (default udp)
  --ifname NAME       interface of the measured tunnel's session (default l2tpm)
  --tunnel-id N       measured tunnel id (default 1; peer tunnel id N + 1); other tunnel i: 100 + i
Stdin: one target count of other sockets per line; stdout: "holder: ready <n> <ms>".
`;

export type OthersMode = 'udp' | 'legacy' | 'unique';

export interface HolderOptions {
  local: string;
  port: number;
  peer: string;
  peerPort: number;
  othersPort: number;
  others: OthersMode;
  ifname: string;
  tunnelId: number;
}

export class HolderOptionError extends Error {}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function intOpt(name: string, v: string | undefined, min: number, max: number): number {
  const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new HolderOptionError(`${name} '${v ?? ''}': expected an integer ${min}..${max}`);
  return n;
}

function ipOpt(name: string, v: string | undefined): string {
  const m = v === undefined ? null : IPV4.exec(v);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new HolderOptionError(`${name} '${v ?? ''}': expected an IPv4 address`);
  return v!;
}

export function parseHolderOptions(argv: string[]): HolderOptions | 'help' {
  const o: Partial<HolderOptions> = { peerPort: 30000, othersPort: 31000, others: 'udp', ifname: 'l2tpm', tunnelId: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '-h':
      case '--help':
        return 'help';
      case '--local': o.local = ipOpt(a, v); i++; break;
      case '--peer': o.peer = ipOpt(a, v); i++; break;
      case '--port': o.port = intOpt(a, v, 1, 65535); i++; break;
      case '--peer-port': o.peerPort = intOpt(a, v, 1, 65535); i++; break;
      case '--others-port': o.othersPort = intOpt(a, v, 1, 65535); i++; break;
      case '--tunnel-id': o.tunnelId = intOpt(a, v, 1, 99); i++; break;
      case '--ifname':
        if (!v || !/^[A-Za-z0-9_.-]{1,15}$/.test(v)) throw new HolderOptionError(`${a} '${v ?? ''}': expected an interface name`);
        o.ifname = v; i++; break;
      case '--others':
        if (v !== 'udp' && v !== 'legacy' && v !== 'unique') throw new HolderOptionError(`${a} '${v ?? ''}': expected udp, legacy or unique`);
        o.others = v; i++; break;
      default:
        throw new HolderOptionError(`unknown option '${a}'`);
    }
  }
  if (o.local === undefined) throw new HolderOptionError('--local is required');
  if (o.port === undefined) throw new HolderOptionError('--port is required');
  if (o.peer === undefined) throw new HolderOptionError('--peer is required');
  return o as HolderOptions;
}

/** Largest count of other sockets the peer-port range allows. */
export function maxOthers(o: HolderOptions): number {
  return 65536 - o.othersPort;
}

interface Other {
  fd: number;
  tunnelId: number;
}

class Holder {
  readonly kernel = new NetlinkKernel(native);
  readonly others: Other[] = [];

  constructor(readonly o: HolderOptions) {}

  private fail(what: string, rc: number): never {
    throw new Error(`${what}: ${native.strerror(-rc)} (errno ${-rc})`);
  }

  /** A socket as the broker makes a tunnel's: SO_REUSEPORT, bound to local:port, connected. */
  private socket(peerPort: number): number {
    const fd = native.udpSocket();
    if (fd < 0) this.fail('socket', fd);
    let rc = native.setReusePort(fd);
    if (rc >= 0) rc = native.bind(fd, this.o.local, this.o.port);
    if (rc >= 0) rc = native.connect(fd, this.o.peer, peerPort);
    if (rc < 0) {
      native.close(fd);
      this.fail(`socket ${this.o.local}:${this.o.port} -> ${this.o.peer}:${peerPort}`, rc);
    }
    return fd;
  }

  private tunnel(fd: number, tunnelId: number, peerTunnelId: number, sid: number, psid: number, ifname: string): void {
    let rc = this.kernel.createTunnel({ tunnelId, peerTunnelId, fd });
    if (rc < 0) this.fail(`tunnel ${tunnelId} create`, rc);
    rc = this.kernel.createSession({ tunnelId, sessionId: sid, peerSessionId: psid, ifname });
    if (rc < 0) {
      this.kernel.deleteTunnel(tunnelId);
      this.fail(`session of tunnel ${tunnelId} (${sid}/${psid}) create`, rc);
    }
  }

  measured(): void {
    const t = this.o.tunnelId;
    const fd = this.socket(this.o.peerPort);
    // legacy: the measured tunnel is one of the colliding 1/1 sessions too.
    if (this.o.others === 'legacy') this.tunnel(fd, t, t + 1, 1, 1, this.o.ifname);
    else this.tunnel(fd, t, t + 1, t, t + 1, this.o.ifname);
  }

  resize(n: number): void {
    while (this.others.length < n) {
      const i = this.others.length;
      const fd = this.socket(this.o.othersPort + i);
      const tunnelId = 100 + i;
      if (this.o.others !== 'udp') {
        const [sid, psid] = this.o.others === 'legacy' ? [1, 1] : [tunnelId, tunnelId];
        this.tunnel(fd, tunnelId, tunnelId, sid, psid, `l2tpo${i}`);
      }
      this.others.push({ fd, tunnelId });
    }
    while (this.others.length > n) {
      const s = this.others.pop()!;
      if (this.o.others !== 'udp') this.kernel.deleteTunnel(s.tunnelId);
      native.close(s.fd);
    }
  }
}

function main(): void {
  let o: HolderOptions;
  try {
    const r = parseHolderOptions(process.argv.slice(2));
    if (r === 'help') {
      process.stdout.write(HELP);
      return;
    }
    o = r;
  } catch (e) {
    if (!(e instanceof HolderOptionError)) throw e;
    process.stderr.write(`holder: ${e.message}\n${HELP}`);
    process.exit(2);
  }
  const lim = native.raiseFdLimit();
  if (typeof lim === 'number') process.stderr.write(`holder: cannot raise the fd limit: ${native.strerror(-lim)}\n`);
  const h = new Holder(o);
  try {
    h.measured();
  } catch (e) {
    process.stderr.write(`holder: measured tunnel: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write('holder: ready 0 0\n');
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const want = line.trim();
    if (want === '') return;
    const n = /^\d+$/.test(want) ? Number(want) : NaN;
    if (!(n >= 0 && n <= maxOthers(o))) {
      process.stderr.write(`holder: count '${want}': expected 0..${maxOthers(o)}\n`);
      return;
    }
    const t0 = performance.now();
    try {
      h.resize(n);
    } catch (e) {
      process.stderr.write(`holder: at ${h.others.length} other sockets: ${(e as Error).message}\n`);
      process.exit(1);
    }
    process.stdout.write(`holder: ready ${h.others.length} ${Math.round(performance.now() - t0)}\n`);
  });
  rl.on('close', () => {
    h.resize(0);
    h.kernel.deleteTunnel(o.tunnelId);
    process.exit(0);
  });
}

main();
