// Broker-side path MTU of one tunnel (spec §4.2 "Per-tunnel behaviour"), sans-IO: in automatic
// mode (broker.pmtu = 0) the broker probes the path to the client, one probe per second, and
// keeps the largest size the client acknowledges; the client's own measurement arrives as
// PMTU_NTFY; the tunnel MTU is the formula of both (src/protocol/mtu.ts). With a fixed
// broker.pmtu nothing is probed and client notifications are ignored. BrokerTunnel (tunnel.ts)
// turns the results into datagrams, the kernel MTU and the mtu-changed hook.
// Over an IPv6 underlay (the client's address family) probe payloads are 20 bytes smaller for the
// same IP size, the overhead is 74 bytes, 1280 is probed last, and the default (a 1500-byte path)
// is 1426 instead of 1446.
import { brokerProbeRepeat, timers } from '../protocol/constants.js';
import { encodePmtuProbe } from '../protocol/messages.js';
import {
  brokerProbeSizesFor, ipUdpOverhead, pathToTunnelMtu, tunnelMtu, type UnderlayFamily,
} from '../protocol/mtu.js';
import { periodic } from './deadline-heap.js';

/** What a 1500-byte path carries: the tunnel MTU until a measurement says otherwise (1446 over
 *  IPv4, PMTU_DEFAULT; 1426 over IPv6). */
const PATH_DEFAULT = 1500;

export class BrokerPmtu {
  /** broker.pmtu when the tunnel was made: a reload changes it for new tunnels only. */
  private readonly pmtu: number;
  /** Our PMTU measurement as a tunnel MTU (the family's default until a probe says otherwise). */
  private measured: number;
  /** Tunnel MTU of a 1500-byte path over this family: the upper bound without a notification. */
  private readonly defaultMtu: number;
  private readonly sizes: readonly number[];
  /** The client's last PMTU_NTFY, null before the first. */
  remoteMtu: number | null = null;
  /** When probeStep is due (Infinity: not probing). */
  nextProbeAt = Infinity;
  private probeIndex = 0;
  private lastProbeSize = 0;
  private bestAcked = 0;

  constructor(pmtu: number, private readonly family: UnderlayFamily = 4) {
    this.pmtu = pmtu;
    this.defaultMtu = pathToTunnelMtu(PATH_DEFAULT, family);
    this.sizes = brokerProbeSizesFor(family);
    this.measured = pmtu > 0 ? pmtu : this.defaultMtu;
  }

  get fixed(): boolean {
    return this.pmtu > 0;
  }

  /** The tunnel MTU from our measurement and the client's. */
  tunnelMtu(): number {
    return tunnelMtu(this.measured, this.remoteMtu ?? this.defaultMtu);
  }

  /** Tunnel up in automatic mode: the first probe after `delay` ms. */
  start(now: number, delay: number): void {
    this.nextProbeAt = now + delay;
  }

  /** Tunnel closed: no more probes. */
  stop(): void {
    this.nextProbeAt = Infinity;
  }

  /** A PMTUD_ACK carrying the UDP payload length of one of our probes: the new measurement
   *  (tunnel MTU) when that size is the largest acknowledged so far, 'same' when it is not,
   *  'too-large' when we never probed that large (a confused or lying peer). */
  ack(value: number): number | 'same' | 'too-large' {
    const size = value + ipUdpOverhead(this.family);
    if (size > this.sizes[0]) return 'too-large';
    if (size <= this.bestAcked) return 'same';
    this.bestAcked = size;
    this.measured = pathToTunnelMtu(size, this.family);
    return this.measured;
  }

  /** A PMTU_NTFY from the client: whether it changed the client's measurement. */
  remoteNotify(value: number): boolean {
    if (value === 0 || value === this.remoteMtu) return false;
    this.remoteMtu = value;
    return true;
  }

  /** Due at nextProbeAt. One probe per second: 1500×4, 1492×4, ... until a size at or below the
   *  best ACK was sent; then (or after a full unanswered run) sleep 500-699 s and start over.
   *  Returns the probe datagram to send, 'rest' when a run ended with an ACK, 'unanswered' when
   *  no probe of the run was acknowledged. random: uniform [0, 1). */
  probeStep(now: number, random: () => number): Uint8Array | 'rest' | 'unanswered' {
    const done = this.lastProbeSize > 0 && this.lastProbeSize <= this.bestAcked;
    if (done || this.probeIndex >= this.sizes.length * brokerProbeRepeat) {
      this.probeIndex = 0;
      this.lastProbeSize = 0;
      this.bestAcked = 0;
      this.nextProbeAt = now + timers.brokerReprobeMin + Math.floor(random() * timers.brokerReprobeJitter);
      return done ? 'rest' : 'unanswered';
    }
    const size = this.sizes[Math.floor(this.probeIndex / brokerProbeRepeat)];
    this.probeIndex++;
    this.lastProbeSize = size;
    this.nextProbeAt = periodic(this.nextProbeAt, timers.brokerProbeInterval, now);
    return probeDatagram(size, this.family);
  }

  /** For the status table: fixed, idle or the size being probed. */
  describe(): string {
    return this.fixed ? 'fixed' : this.probeIndex > 0 ? `probing ${this.lastProbeSize}` : 'idle';
  }
}

/** Probe datagrams are 1,232-1,472 zero bytes after the header and never change: one shared
 *  buffer per size and family instead of one allocation per probe (24 per tunnel per run; the
 *  allocations were the broker's main garbage with many tunnels probing). The driver only reads
 *  them. */
const PROBES = new Map<number, Uint8Array>();
function probeDatagram(size: number, family: UnderlayFamily): Uint8Array {
  const key = family === 6 ? -size : size;
  let p = PROBES.get(key);
  if (!p) PROBES.set(key, (p = encodePmtuProbe(size, family)));
  return p;
}
