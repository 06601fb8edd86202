// The control socket on Node: a Unix stream socket (mode 0600) answering one request line per
// connection with one JSON line (protocol in src/broker/control.ts). A peer that sends nothing is
// dropped after IDLE_MS; a request longer than MAX_REQUEST is answered with an error.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { MAX_REQUEST, type ControlReply } from '../../broker/control.js';

const IDLE_MS = 5_000;
const MAX_CONNECTIONS = 16;

export type ControlHandler = (request: string) => ControlReply;

export class ControlServer {
  private server: Server | null = null;

  constructor(
    readonly path: string,
    private readonly handle: ControlHandler,
    private readonly log: (level: 'error' | 'warning' | 'info' | 'debug', message: string) => void,
  ) {}

  /** Resolves once listening; rejects with a one-line reason (in use by a live broker, EACCES...). */
  async start(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    if (await this.stale()) unlinkSync(this.path);
    const server = createServer((sock) => this.serve(sock));
    server.maxConnections = MAX_CONNECTIONS;
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.path, 0o600);
    server.on('error', (e) => this.log('error', `control socket ${this.path}: ${e.message}`));
    server.unref();
    this.server = server;
  }

  /** True when a socket file exists but no one answers on it (left by a killed broker). */
  private async stale(): Promise<boolean> {
    try {
      if (!lstatSync(this.path).isSocket()) throw new Error(`${this.path} exists and is not a socket`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    return new Promise<boolean>((resolve, reject) => {
      const c = createConnection(this.path);
      c.once('connect', () => {
        c.destroy();
        reject(new Error(`control socket ${this.path} is in use by another running broker (set [control] socket)`));
      });
      c.once('error', () => resolve(true));
    });
  }

  stop(): void {
    if (!this.server) return;
    this.server.close();
    this.server = null;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  private serve(sock: Socket): void {
    let buf = '';
    let done = false;
    sock.setEncoding('utf8');
    sock.setTimeout(IDLE_MS, () => {
      this.log('debug', `control socket: a peer sent no complete command within ${IDLE_MS / 1000} s; closed it`);
      sock.destroy();
    });
    const answer = (request: string | null): void => {
      if (done) return;
      done = true;
      let reply: ControlReply;
      if (request === null) reply = { ok: false, error: `request longer than ${MAX_REQUEST} bytes` };
      else {
        try {
          reply = this.handle(request);
        } catch (e) {
          reply = { ok: false, error: `internal error: ${e instanceof Error ? e.message : String(e)}` };
          this.log('error', `control socket: internal error on "${request.slice(0, 64)}": ${reply.error}`);
        }
      }
      sock.end(`${JSON.stringify(reply)}\n`);
    };
    sock.on('data', (chunk: string) => {
      if (done) return;
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl > MAX_REQUEST || (nl < 0 && buf.length > MAX_REQUEST)) answer(null);
      else if (nl >= 0) answer(buf.slice(0, nl));
    });
    sock.on('end', () => answer(buf.length > MAX_REQUEST ? null : buf));
    sock.on('error', () => sock.destroy());
  }
}
