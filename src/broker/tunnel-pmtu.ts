// Broker-side path MTU of one tunnel (spec §4.2 "Per-tunnel behaviour"), sans-IO: in automatic
// mode (broker.pmtu = 0) the broker probes the path to the client, one probe per second, and
// keeps the largest size the client acknowledges; the client's own measurement arrives as
// PMTU_NTFY; the tunnel MTU is the formula of both (src/protocol/mtu.ts). With a fixed
// broker.pmtu nothing is probed and client notifications are ignored. BrokerTunnel (tunnel.ts)
// turns the results into datagrams, the kernel MTU and the mtu-changed hook.
import { IPV4_UDP_OVERHEAD, PMTU_DEFAULT, TUNNEL_OVERHEAD, brokerProbeRepeat, brokerProbeSizes, timers } from '../protocol/constants.js';
import { encodePmtuProbe } from '../protocol/messages.js';
import { tunnelMtu } from '../protocol/mtu.js';
import { periodic } from './deadline-heap.js';

const PROBE_SEQUENCE_LENGTH = brokerProbeSizes.length * brokerProbeRepeat;

export class BrokerPmtu {
  /** broker.pmtu when the tunnel was made: a reload changes it for new tunnels only. */
  private readonly pmtu: number;
  /** Our PMTU measurement as a tunnel MTU (1446 until a probe says otherwise). */
  private measured: number;
  /** The client's last PMTU_NTFY, null before the first. */
  remoteMtu: number | null = null;
  /** When probeStep is due (Infinity: not probing). */
  nextProbeAt = Infinity;
  private probeIndex = 0;
  private lastProbeSize = 0;
  private bestAcked = 0;

  constructor(pmtu: number) {
    this.pmtu = pmtu;
    this.measured = pmtu > 0 ? pmtu : PMTU_DEFAULT;
  }

  get fixed(): boolean {
    return this.pmtu > 0;
  }

  /** The tunnel MTU from our measurement and the client's. */
  tunnelMtu(): number {
    return tunnelMtu(this.measured, this.remoteMtu ?? PMTU_DEFAULT);
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
    const size = value + IPV4_UDP_OVERHEAD;
    if (size > brokerProbeSizes[0]) return 'too-large';
    if (size <= this.bestAcked) return 'same';
    this.bestAcked = size;
    this.measured = size - TUNNEL_OVERHEAD;
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
    if (done || this.probeIndex >= PROBE_SEQUENCE_LENGTH) {
      this.probeIndex = 0;
      this.lastProbeSize = 0;
      this.bestAcked = 0;
      this.nextProbeAt = now + timers.brokerReprobeMin + Math.floor(random() * timers.brokerReprobeJitter);
      return done ? 'rest' : 'unanswered';
    }
    const size = brokerProbeSizes[Math.floor(this.probeIndex / brokerProbeRepeat)];
    this.probeIndex++;
    this.lastProbeSize = size;
    this.nextProbeAt = periodic(this.nextProbeAt, timers.brokerProbeInterval, now);
    return probeDatagram(size);
  }

  /** For the status table: fixed, idle or the size being probed. */
  describe(): string {
    return this.fixed ? 'fixed' : this.probeIndex > 0 ? `probing ${this.lastProbeSize}` : 'idle';
  }
}

/** Probe datagrams are 1,306-1,472 zero bytes after the header and never change: one shared
 *  buffer per size instead of one allocation per probe (24 per tunnel per run; the allocations
 *  were the broker's main garbage with many tunnels probing). The driver only reads them. */
const PROBES = new Map<number, Uint8Array>();
function probeDatagram(size: number): Uint8Array {
  let p = PROBES.get(size);
  if (!p) PROBES.set(size, (p = encodePmtuProbe(size)));
  return p;
}
