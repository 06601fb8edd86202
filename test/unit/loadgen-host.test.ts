// The load generator end to end on loopback (no L2TP needed): bench/loadgen/host-broker.js (the
// real BrokerCore and BrokerDriver on the addon's sockets, a kernel that only says yes) and
// bench/loadgen/main.js with each of its ways of reading the clients' sockets. Asserts what the
// VM benchmarks rely on: every client up, the broker's creations and teardown as counted by the
// broker itself, and the load generator's own CPU and event-loop figures in the result line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '../../bench/loadgen');

function waitFor(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) return resolve();
      if (Date.now() > end) return reject(new Error(`${what}: not within ${ms} ms`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

interface Run {
  code: number | null;
  out: string;
  result: Record<string, any>;
}

/** A host broker on `port` and the load generator against it with `args`; both ended after.
 *  agentPort: the load generator reads the broker through a broker-agent on that port (as from
 *  the host into a VM) instead of /proc and the log itself. */
async function runAgainstHostBroker(port: number, args: string[], agentPort = 0): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'td-lgh-'));
  const log = join(dir, 'broker.log');
  const logFd = openSync(log, 'w');
  const broker = spawn(process.execPath, [join(BENCH, 'host-broker.js'), '--port', String(port), '--max-tunnels', '100'],
    { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let agent: ChildProcess | null = null;
  try {
    await waitFor('host broker start', 10_000, () => readFileSync(log, 'utf8').includes('host broker started'));
    let reading = ['--broker-pid', String(broker.pid), '--broker-log', log];
    if (agentPort) {
      agent = spawn(process.execPath, [join(BENCH, 'broker-agent.js'), '--listen', `127.0.0.1:${agentPort}`,
        '--broker-pid', String(broker.pid), '--broker-log', log, '--max-s', '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let said = '';
      agent.stdout!.on('data', (d) => { said += d; });
      await waitFor('broker agent start', 10_000, () => said.includes('broker-agent: serving broker pid'));
      reading = ['--broker-agent', `http://127.0.0.1:${agentPort}`];
    }
    const lg = spawn(process.execPath, [join(BENCH, 'main.js'), '--broker', `127.0.0.1:${port}`, '--source', '127.0.1.1-3',
      ...reading, '--progress', '0', '--up-timeout', '20', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    lg.stdout!.on('data', (d) => { out += d; });
    const code = await exited(lg);
    const line = out.split('\n').find((l) => l.startsWith('LOADGEN-RESULT '));
    assert.ok(line, `a result line in:\n${out}`);
    return { code, out, result: JSON.parse(line!.slice('LOADGEN-RESULT '.length)) };
  } finally {
    broker.kill('SIGKILL');
    await exited(broker);
    if (agent) {
      agent.kill('SIGTERM');
      await exited(agent);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = 20_000 + (process.pid % 20_000);

const MODES = [
  ['batched reader (default)', []],
  ['--read-ms 50 (deferred reads)', ['--read-ms', '50']],
  ['--per-socket', ['--per-socket']],
] as const;

test(`loadgen ↔ host broker, each way of reading (${MODES.map((m) => m[0]).join(', ')}): 12 clients up, 12 created, none left after teardown, own figures reported`, async () => {
  // the three at once, each with its own broker (one after the other takes three times as long)
  const runs = await Promise.all(MODES.map(([, args], k) =>
    runAgainstHostBroker(base + k, ['--clients', '12', '--duration', '2', '--windows', '2', ...args])));
  runs.forEach((r, k) => {
    const why = `${MODES[k][0]}:\n${r.out}`;
    assert.is(r.code, 0, why);
    const x = r.result;
    assert.is(x.neverUp, 0, why);
    assert.is(x.lost, 0, why);
    assert.is(x.upAtEnd, 12, why);
    assert.is(x.broker.createdTotal, 12, `the broker counted 12 creations; ${why}`);
    assert.is(x.broker.orphans, 0, why);
    assert.is(x.broker.tunnelsAfterTeardown, 0, `every ERROR 0x11 closed its tunnel; ${why}`);
    // read from /proc in clock ticks (10 ms): 12 arrivals may well take less than one, so
    // what is checked is that a figure was read, not that it is above zero
    assert.type(x.loadgen.arrivalCpuS, 'number', `the load generator measured its own CPU; ${why}`);
    assert.type(x.loadgen.holdCpuPerMinS, 'number', why);
    assert.ok(x.loadgen.arrivalCpuS >= 0 && x.loadgen.holdCpuPerMinS >= 0, why);
    assert.is(x.loadgen.holdWindowsCpuPerMinS.length, 2, why);
    assert.ok(x.loadgen.rssKiB > 0, why);
    assert.type(x.loadgen.maxLagMs.hold, 'number', why);
    assert.match(r.out, /load generator CPU: arrivals [\d.]+ s, hold [\d.]+ s per minute/, why);
  });
  // the VM benchmarks read these figures with load-lib.sh's load_vars (dash, as in the guest)
  const dir = mkdtempSync(join(tmpdir(), 'td-lgv-'));
  try {
    writeFileSync(join(dir, 'run.out'), runs[0].out);
    const v = spawnSync('dash', ['-c', `. '${resolve('test/vm/scenarios/load-lib.sh')}'\nTD_WORK='${dir}' load_vars run`], { encoding: 'utf8' });
    assert.is(v.status, 0, v.stderr);
    const vars = Object.fromEntries(v.stdout.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
    const lgr = runs[0].result.loadgen;
    assert.is(vars.lg_created, '12');
    assert.is(Number(vars.lg_self_hold_per_min), Math.round(lgr.holdCpuPerMinS * 1000) / 1000);
    assert.is(Number(vars.lg_self_arrival_cpu), Math.round(lgr.arrivalCpuS * 1000) / 1000);
    assert.is(vars.lg_self_lag_hold, String(lgr.maxLagMs.hold));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadgen ↔ host broker through a broker-agent (the load generator on the host, the broker in a VM): the broker\'s figures and its stop come from the agent', async () => {
  const r = await runAgainstHostBroker(base + 10, ['--clients', '8', '--duration', '2', '--windows', '2', '--stop-broker', 'TERM', '--stop-wait', '10'], base + 11);
  const why = r.out;
  assert.is(r.code, 0, why);
  const b = r.result.broker;
  assert.ok(b, `broker figures in the result; ${why}`);
  assert.is(b.createdInBurst, 8, `the agent's SIGUSR1 counters; ${why}`);
  assert.is(b.tunnelsAtEnd, 8, why);
  assert.is(b.orphans, 0, why);
  assert.ok(b.rssKiB.before > 10_000, `the broker's RSS through the agent; ${why}`);
  assert.ok(b.fds.holdEnd > 8, `its fds: a socket per tunnel; ${why}`);
  // clock ticks (10 ms), as for the load generator's own CPU: read, not necessarily above zero
  assert.type(b.burstCpuS.self, 'number', why);
  assert.ok(b.burstCpuS.self >= 0, why);
  assert.is(b.holdWindowsCpuPerMinS.length, 2, why);
  assert.ok(b.holdWindowsCpuPerMinS.every((v: number | null) => typeof v === 'number' && v >= 0), `per window, on the agent's clock; ${why}`);
  assert.ok(Math.abs(b.holdS - 2) < 1.5, `the hold as the agent timed it: ${b.holdS} s; ${why}`);
  // host-broker exits at once on SIGTERM (it tells nobody): the agent saw it go
  assert.is(r.result.stop.signal, 'SIGTERM', why);
  assert.type(r.result.stop.exitAfterS, 'number', why);
  assert.ok(r.result.stop.exitAfterS < 5, why);
  assert.is(r.result.stop.upWhenStopped, 8, why);
});

test('broker-agent and loadgen options: bad values name the option', async () => {
  const { parseAgentOptions } = await import('../../bench/loadgen/broker-agent.js');
  const { parseLoadOptions, OptionError } = await import('../../bench/loadgen/options.js');
  assert.equal(parseAgentOptions(['--listen', '198.51.100.1:9100', '--broker-pid', '42', '--broker-log', '/x']),
    { host: '198.51.100.1', port: 9100, pid: 42, log: '/x', maxS: 7200 });
  assert.match(String(parseAgentOptions(['--listen', 'nowhere:1', '--broker-pid', '42', '--broker-log', '/x'])), /--listen: 'nowhere:1'/);
  assert.match(String(parseAgentOptions(['--listen', '198.51.100.1:9100', '--broker-pid', 'x', '--broker-log', '/x'])), /--broker-pid: 'x'/);
  assert.match(String(parseAgentOptions(['--listen', '198.51.100.1:9100'])), /required/);
  const lg = (extra: string[]) => parseLoadOptions(['--broker', '198.51.100.1:8942', '--clients', '3', ...extra]);
  const o = lg(['--broker-agent', 'http://198.51.100.1:9100/', '--stop-broker', 'TERM']);
  assert.ok(o !== 'help' && o.brokerAgent === 'http://198.51.100.1:9100');
  assert.throws(() => lg(['--broker-agent', 'ftp://x']), (e: Error) => e instanceof OptionError && /--broker-agent: 'ftp:\/\/x'/.test(e.message));
  assert.throws(() => lg(['--broker-agent', 'http://198.51.100.1:9100', '--broker-pid', '3', '--broker-log', '/x']), /cannot go with --broker-pid/);
  assert.throws(() => lg(['--stop-broker', 'TERM']), /--stop-broker needs/);
});

test.run();
