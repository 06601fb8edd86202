// The usage figure a listener port reports (USAGE reply, spec §2.4.2; issue 7 item 4,
// docs/scaling.md "The kernel's cost per port").
//
// Every tunnel socket is bound to its listener's address:port. On kernels without the
// connected-UDP 4-tuple hash (before Linux 6.13, e.g. Debian 12's 6.1) each data packet costs a
// scan of every socket on its port, so clients that list several ports of one broker should
// spread over them. Clients pick the lowest usage among the brokers (address:port entries) they
// list, ties going to the earlier one: with one broker-wide figure on every port they all take
// the first port. So a port answers with its own tunnels, scaled to its share of max_tunnels
// (live on the port × number of ports), but never below the broker-wide figure: a broker's
// standing against other brokers stays what it was, a full broker is full on every port, and a
// broker with one port reports exactly what it did before. Wire format unchanged (u16).
export class PortUsage {
  private total = 0;
  private readonly byPort = new Map<number, number>();

  /** A tunnel on `port` started (+1) or stopped (-1) counting as live. */
  change(delta: number, port: number): void {
    this.total += delta;
    const n = (this.byPort.get(port) ?? 0) + delta;
    if (n === 0) this.byPort.delete(port);
    else this.byPort.set(port, n);
  }

  /** Live tunnels, on `port` or (port undefined) on the whole broker. */
  live(port?: number): number {
    return port === undefined ? this.total : (this.byPort.get(port) ?? 0);
  }

  /** floor(min(max(live, live on port × ports), max_tunnels) / max_tunnels × 65535); the
   *  broker-wide floor(min(live, max_tunnels) / max_tunnels × 65535) without a port. */
  figure(maxTunnels: number, ports: number, port?: number): number {
    const onPort = port === undefined ? 0 : this.live(port) * Math.max(1, ports);
    const load = Math.min(Math.max(this.total, onPort), maxTunnels);
    return Math.floor((load / maxTunnels) * 0xffff);
  }
}

/** Added to a port's figure when the broker has several ports: 0 .. (one tunnel's worth − 1),
 *  fixed per asking endpoint and port (salted FNV-1a). When the ports' figures are equal (a
 *  restarted broker: every returning client sees 0 everywhere) clients would all take their
 *  first port; this spreads them, and is too small to reorder ports or brokers that differ by a
 *  tunnel or more. Never turns a figure into 0xFFFF (full). */
export function tieBreak(figure: number, maxTunnels: number, ip: string, port: number, listenerPort: number, salt: number): number {
  const span = Math.floor(0xffff / Math.max(1, maxTunnels));
  if (span <= 1 || figure >= 0xffff) return figure;
  let h = (0x811c9dc5 ^ salt) >>> 0;
  const key = `${ip}:${port}>${listenerPort}`;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return Math.min(0xfffe, figure + (h % span));
}
