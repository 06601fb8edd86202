// `tunneldigger-broker ctl [-c config | -s socket] <command> [args]`: sends one command to a running
// broker's control socket and prints the answer. Exit codes: 0 done, 1 the broker refused the
// command (reason on stderr), 2 bad usage, 3 no broker reachable on the socket.
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { COMMANDS, controlSocketPath, type ControlReply } from '../../broker/control.js';

export const DEFAULT_CONFIG = '/etc/tunneldigger/broker.cfg';
const TIMEOUT_MS = 10_000;

export interface TextSink {
  write(text: string): unknown;
}

export async function ctl(argv: string[], out: TextSink = process.stdout, err: TextSink = process.stderr): Promise<number> {
  let socket: string | null = null;
  let config: string | null = null;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '-s' || a === '-c') && i + 1 < argv.length) {
      if (a === '-s') socket = argv[++i];
      else config = argv[++i];
    } else if (a === '-s' || a === '-c') {
      err.write(`tunneldigger-broker ctl: option ${a} needs an argument\n`);
      return 2;
    } else rest.push(a);
  }
  const json = rest.includes('--json');
  const words = rest.filter((w) => w !== '--json' || rest[0] === 'tunnels');
  const cmd = words[0];
  if (!cmd || !(COMMANDS as readonly string[]).includes(cmd)) {
    err.write(`tunneldigger-broker ctl: ${cmd ? `unknown command "${cmd}"` : 'no command given'}; ` +
      `commands: ${COMMANDS.join(', ')} (see --help)\n`);
    return 2;
  }
  if (socket === null) {
    const path = config ?? DEFAULT_CONFIG;
    try {
      socket = controlSocketPath(parseConfig(readFileSync(path, 'utf8')), path);
    } catch (e) {
      if (config !== null || e instanceof ConfigError) {
        err.write(`tunneldigger-broker ctl: ${path}: ${(e as Error).message}\n`);
        return 2;
      }
      socket = controlSocketPath({}, path);
    }
  }
  let reply: ControlReply;
  try {
    reply = await request(socket, words.join(' '));
  } catch (e) {
    err.write(`tunneldigger-broker ctl: cannot talk to the broker on ${socket}: ${(e as Error).message}\n`);
    return 3;
  }
  if (!reply.ok) {
    err.write(`tunneldigger-broker ctl: ${cmd}: ${reply.error}\n`);
    return 1;
  }
  out.write(json ? `${JSON.stringify(reply.data ?? null, null, 2)}\n` : `${reply.text}\n`);
  return 0;
}

export function request(path: string, line: string, timeoutMs = TIMEOUT_MS): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const c = createConnection(path);
    c.setEncoding('utf8');
    c.setTimeout(timeoutMs, () => c.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    c.on('connect', () => c.write(`${line}\n`));
    c.on('data', (d: string) => (buf += d));
    c.on('error', reject);
    c.on('end', () => {
      try {
        resolve(JSON.parse(buf) as ControlReply);
      } catch {
        reject(new Error(`unreadable answer "${buf.slice(0, 80)}"`));
      }
    });
  });
}
