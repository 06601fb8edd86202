// The QuickJS client's cost per keepalive round, independent of the machine's load:
//   node build/js/bench/client-steady.js [--binary build/bench/tunneldigger-steady]
//     [--rounds N] [--interval MS] [--tool callgrind|strace] [--keep DIR] [--pmtu] [--echo]
// (`make bench-client-steady`). A broker stand-in on 127.0.0.1 (this process) answers the
// handshake like the broker and then sends a broker KEEPALIVE every interval on its own timer,
// as the brokers do (every 5 s): one round = one keepalive sent and one received by the client,
// as in a tunnel's normal life (main: each its own wake-up; a client that sends its keepalive
// with the broker's: one wake-up). --echo instead answers every client KEEPALIVE with one
// broker KEEPALIVE half an interval later (how rounds were measured before: two wake-ups per
// round whatever the client does). The client is the harness binary of
// bench/client-steady-qjs.ts (the real core, driver, loop and bindings; a kernel that says yes)
// run under valgrind's callgrind (instructions) or strace -c (syscalls), twice: with a few
// rounds and with N more; the difference divided by N is the cost of one round, without
// start-up, handshake and shutdown. SIGTERM ends the client after its last counted keepalive.
// --pmtu also answers PMTU probes and lets the client run its rounds (first after 15 s).
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MessageType } from '../src/protocol/constants.js';
import * as m from '../src/protocol/messages.js';

interface Opts {
  binary: string;
  rounds: number;
  interval: number;
  tool: 'callgrind' | 'strace';
  keep: string | null;
  pmtu: boolean;
  echo: boolean;
}

function parse(argv: string[]): Opts {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      binary: { type: 'string', default: 'build/bench/tunneldigger-steady' },
      rounds: { type: 'string', default: '500' },
      interval: { type: 'string', default: '100' },
      tool: { type: 'string', default: 'callgrind' },
      keep: { type: 'string' },
      pmtu: { type: 'boolean', default: false },
      echo: { type: 'boolean', default: false },
    },
  });
  const o: Opts = { binary: v.binary!, rounds: +v.rounds!, interval: +v.interval!, tool: v.tool as Opts['tool'], keep: v.keep ?? null, pmtu: v.pmtu!, echo: v.echo! };
  if (o.tool !== 'callgrind' && o.tool !== 'strace') throw new Error(`--tool: callgrind or strace, not ${o.tool}`);
  if (!(o.rounds >= 1) || !(o.interval >= 1)) throw new Error('--rounds and --interval must be ≥ 1');
  return o;
}

interface Run {
  rounds: number;
  /** callgrind: total Ir; strace: syscall name → calls. */
  instructions: number;
  syscalls: Map<string, number>;
  brokerKeepalives: number;
  probes: number;
}

/** One client run: `rounds` client keepalives after the tunnel is up, then SIGTERM. */
function runOnce(o: Opts, rounds: number, dir: string, tag: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const out = join(dir, `${tag}.out`);
    const timers = new Set<NodeJS.Timeout>();
    let child: ChildProcess | null = null;
    let keepalives = 0;
    let brokerKa = 0;
    let probes = 0;
    let up = false;
    let stopped = false;
    let stderr = '';
    const guard = setTimeout(() => {
      child?.kill('SIGKILL');
      reject(new Error(`${tag}: no result within the time limit (stderr: ${stderr.slice(-400)})`));
    }, 60_000 + rounds * o.interval * 20);
    const reply = (data: Uint8Array, port: number): void => sock.send(data, port, '127.0.0.1');
    let clientPort = 0;
    let ticker: NodeJS.Timeout | null = null;
    sock.on('message', (msg, rinfo) => {
      const f = m.parseFrame(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
      if (!m.isFrame(f)) return;
      switch (f.type) {
        case MessageType.USAGE:
          return reply(m.encodeUsageReply(1), rinfo.port);
        case MessageType.COOKIE:
          return reply(m.encodeCookieReply(new Uint8Array(8).fill(0x43)), rinfo.port);
        case MessageType.PREPARE:
          if (!up && !o.echo) {
            // the broker's own keepalive timer, drift-free as the broker's deadline heap
            clientPort = rinfo.port;
            const t0 = performance.now();
            const beat = (): void => {
              if (stopped) return;
              brokerKa++;
              reply(m.encodeBrokerKeepalive(brokerKa), clientPort);
              ticker = setTimeout(beat, t0 + (brokerKa + 0.5) * o.interval - performance.now());
            };
            ticker = setTimeout(beat, o.interval / 2);
          }
          up = true;
          return reply(m.encodeTunnel(4242, 1), rinfo.port);
        case MessageType.PMTUD:
          probes++;
          return reply(m.encodePmtuAck(f.datagramLength), rinfo.port);
        case MessageType.KEEPALIVE: {
          if (!up || stopped) return;
          keepalives++;
          if (keepalives > rounds) {
            stopped = true;
            if (ticker) clearTimeout(ticker);
            terminateClient(child!);
            return;
          }
          if (!o.echo) return;
          const t = setTimeout(() => {
            timers.delete(t);
            brokerKa++;
            reply(m.encodeBrokerKeepalive(brokerKa), rinfo.port);
          }, o.interval / 2);
          timers.add(t);
        }
      }
    });
    sock.bind(0, '127.0.0.1', () => {
      const port = sock.address().port;
      const client = [o.binary, String(o.interval), o.pmtu ? '15000' : '0', '-u', `steady-${tag}`, '-b', `127.0.0.1:${port}`, '-i', 'tdsteady0', '-t', '1'];
      const cmd = o.tool === 'callgrind'
        ? ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`, '--dump-line=no', ...client]
        : ['strace', '-f', '-c', '-o', out, ...client];
      child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('error', (e) => reject(new Error(`${cmd[0]}: ${e.message}`)));
      child.on('exit', (code, sig) => {
        clearTimeout(guard);
        if (ticker) clearTimeout(ticker);
        for (const t of timers) clearTimeout(t);
        sock.close();
        if (!stopped) return reject(new Error(`${tag}: client exited (${code ?? sig}) before ${rounds} rounds: ${stderr.slice(-400)}`));
        try {
          const text = readFileSync(out, 'utf8');
          resolve({ rounds, brokerKeepalives: brokerKa, probes, ...(o.tool === 'callgrind' ? { instructions: callgrindTotal(text), syscalls: new Map() } : { instructions: 0, syscalls: straceCounts(text) }) });
        } catch (e) {
          reject(e);
        }
      });
    });
  });
}

/** SIGTERM to the client: valgrind runs it in its own process, strace as its child. */
function terminateClient(child: ChildProcess): void {
  const pid = child.pid!;
  let kids = '';
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  } catch {
    // gone already
  }
  process.kill(kids ? Number(kids.split(' ')[0]) : pid, 'SIGTERM');
}

function callgrindTotal(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('summary:') || l.startsWith('totals:'));
  if (!line) throw new Error('no summary line in the callgrind output');
  return Number(line.split(/\s+/)[1]);
}

/** strace -c table: "% time seconds usecs/call calls [errors] syscall". */
function straceCounts(text: string): Map<string, number> {
  const r = new Map<string, number>();
  for (const l of text.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length < 5 || !/^\d/.test(f[0]!) || f[f.length - 1] === 'total') continue;
    r.set(f[f.length - 1]!, Number(f[3]));
  }
  return r;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const dir = o.keep ?? mkdtempSync(join(tmpdir(), 'td-steady-'));
  mkdirSync(dir, { recursive: true });
  const base = 20;
  try {
    const a = await runOnce(o, base, dir, `r${base}`);
    const b = await runOnce(o, base + o.rounds, dir, `r${base + o.rounds}`);
    const n = b.rounds - a.rounds;
    console.log(`client steady state: ${o.binary}, keepalive every ${o.interval} ms, broker keepalives ${o.echo ? 'half an interval after each client keepalive' : 'every interval on their own timer'}, ${n} rounds (runs of ${a.rounds} and ${b.rounds}; broker keepalives ${a.brokerKeepalives} / ${b.brokerKeepalives}${o.pmtu ? `, PMTU probes ${a.probes} / ${b.probes}` : ''})`);
    if (o.tool === 'callgrind') {
      console.log(`instructions: ${a.instructions} / ${b.instructions}`);
      console.log(`FIGURE client-instructions-per-round ${Math.round((b.instructions - a.instructions) / n)}`);
    } else {
      const names = [...new Set([...a.syscalls.keys(), ...b.syscalls.keys()])].sort();
      for (const s of names) {
        const d = ((b.syscalls.get(s) ?? 0) - (a.syscalls.get(s) ?? 0)) / n;
        if (Math.abs(d) >= 0.005) console.log(`FIGURE client-syscalls-per-round ${s} ${d.toFixed(2)}`);
      }
    }
    if (o.keep) console.log(`outputs in ${dir}`);
  } finally {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`client-steady: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
