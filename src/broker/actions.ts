// What the sans-IO broker core asks its driver to do. The driver (executor.ts) executes the
// actions in order and feeds results back (setupResult, socketError).
import type { Endpoint } from '../native.js';
import type { LogLevel } from '../runtime/loop.js';

/** A listening socket (by address and port; address absent = the first of broker.address) or a
 *  tunnel's connected socket (by tunnel id). */
export type SocketRef = { kind: 'listener'; port: number; address?: string } | { kind: 'tunnel'; tunnelId: number };

/** A child process run without a shell, in a per-key FIFO (the next starts when this exits). */
export interface Job {
  /** Queue key: jobs with the same key run strictly one after another. */
  queue: string;
  path: string;
  args: string[];
  /** Human label for logs, e.g. "hook session.up for tunnel 100". */
  label: string;
  /** Arguments as they may appear in the log (IPs hidden when log_ip_addresses=false). */
  logArgs: string[];
  /** A non-zero exit is expected and only logged at debug level (tc qdisc del). */
  ignoreFailure?: boolean;
}

export interface TunnelSetup {
  tunnelId: number;
  peerTunnelId: number;
  sessionId: number;
  peerSessionId: number;
  ifname: string;
  /** Listener port (and address, absent = the first of broker.address) the PREPARE came in on:
   *  the tunnel socket binds the same address:port, so it is of the same family. */
  port: number;
  address?: string;
  client: Endpoint;
}

export type Action =
  /** shared: a tunnel's small datagram (a keepalive, an answer to a probe, a PMTU_NTFY, a
   *  REL_ACK) that may leave through the listener of the tunnel's address and port instead (the
   *  same source, destination and payload), so that the driver can send one tick's keepalives,
   *  or one read's answers, of many tunnels in one syscall. */
  | { type: 'send'; socket: SocketRef; data: Uint8Array; to: Endpoint; shared?: boolean }
  /** Open + bind + connect the tunnel socket, TUNNEL_CREATE, SESSION_CREATE; report with setupResult. */
  | { type: 'setup'; setup: TunnelSetup }
  /** Link MTU (rtnetlink) then SESSION_MODIFY. */
  | { type: 'setMtu'; tunnelId: number; sessionId: number; ifname: string; mtu: number }
  /** SESSION_DELETE, TUNNEL_DELETE, close the tunnel socket (or, while the setup is still in
   *  the kernel, undo it when it completes). */
  | { type: 'teardown'; tunnelId: number; sessionId: number }
  /** afterKernel: a tunnel id; the job starts only once the kernel has done what that tunnel's
   *  earlier actions asked (the down hook after the teardown has removed the interface, the
   *  mtu-changed hook after the new MTU is set). A driver whose kernel calls return when done
   *  satisfies it at once; the netlink worker and a shutdown's teardown do not. */
  | { type: 'run'; job: Job; afterKernel?: number }
  | { type: 'log'; level: LogLevel; message: string };

export type SetupStage = 'socket' | 'tunnel' | 'session';

export type SetupResult =
  | { ok: true }
  | { ok: false; stage: SetupStage; errno: number; error: string };
