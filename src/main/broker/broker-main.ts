// tunneldigger-broker entry point (Node): reads the config, wires BrokerCore + BrokerDriver to the
// native addon, the netlink executor and the Node loop, and handles signals.
import { createHmac, randomBytes } from 'node:crypto';
import {
  closeSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync,
} from 'node:fs';
import { constants as osConstants } from 'node:os';
import { BrokerCore } from '../../broker/broker.js';
import { ConfigError, configWarnings, parseConfig, type BrokerConfig } from '../../broker/config.js';
import { BrokerDriver, SHUTDOWN_GRACE_MS, TUNNEL_READ_MS } from '../../broker/executor.js';
import { fdBudgetLog } from '../../broker/fd-budget.js';
import { lockIdRange, type LockFs } from '../../broker/id-range-lock.js';
import { JobRunner } from '../../broker/job-runner.js';
import { brokerLogLoop } from '../../broker/redact.js';
import { timers } from '../../protocol/constants.js';
import { BrokerOps, isExecutable, warnHooksNotExecutable } from './broker-ops.js';
import { CLI_USAGE } from './broker-cli.js';
import { nodeDatagramReader } from '../../runtime/node/datagram-reader.js';
import { NodeLoop } from '../../runtime/node/loop.js';

export const USAGE = CLI_USAGE;

const TC_CANDIDATES = ['/usr/sbin/tc', '/sbin/tc', '/usr/bin/tc', '/bin/tc'];
/** Period of the debug-level counters and status summary lines. */
const COUNTERS_LOG_MS = 300_000;
const RUN_DIR = process.env.TUNNELDIGGER_RUN_DIR ?? '/run/tunneldigger';

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (argv.length !== 1 || argv[0].startsWith('-')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const path = argv[0];
  let cfg: BrokerConfig;
  try {
    cfg = parseConfig(readFileSync(path, 'utf8'));
  } catch (e) {
    const why = e instanceof ConfigError ? e.message : `cannot read config file ${path}: ${(e as Error).message}`;
    process.stderr.write(`tunneldigger-broker: ${why}; exiting\n`);
    return 1;
  }
  // loaded only now, so --help and config errors work without the addon
  const { native } = await import('../../runtime/node/native.js');
  const { NetlinkKernel } = await import('../../netlink/kernel.js');
  const loop = new NodeLoop(native, cfg.verbosity);
  // from now on SIGHUP must not kill the broker (Node's default), also while it starts; once the
  // control socket is up it reloads the config (BrokerOps.reload)
  let onSighup = (): void => loop.log('info', 'SIGHUP while starting: ignored; send it again once the broker has started to reload');
  loop.onSignal(osConstants.signals.SIGHUP, () => onSighup());
  for (const w of configWarnings(cfg)) loop.log('warning', w);
  const enabled = (level: Parameters<NodeLoop['enabled']>[0]): boolean => loop.enabled(level);
  const logLoop = brokerLogLoop(loop, cfg, enabled);

  if (process.getuid?.() !== 0) loop.log('warning', 'not running as root: netlink and SO_BINDTODEVICE will probably fail');
  const tcPath = TC_CANDIDATES.find((p) => isExecutable(p)) ?? 'tc';
  if (tcPath === 'tc') loop.log('warning', `tc not found in ${TC_CANDIDATES.join(', ')}: bandwidth limits will fail (install iproute2)`);
  warnHooksNotExecutable(cfg, loop);
  // every tunnel holds a socket: use the whole hard limit, and say how many tunnels it allows
  const fdLimit = native.raiseFdLimit();
  const fds = fdBudgetLog(fdLimit, cfg, (e) => native.strerror(e));
  loop.log(fds.level, fds.message);

  const kernel = new NetlinkKernel(native);
  const family = kernel.resolveL2tpFamily();
  if (family < 0) {
    loop.log('error', `the kernel has no "l2tp" generic netlink family (${native.strerror(-family)}); ` +
      'load the modules l2tp_core, l2tp_netlink and l2tp_eth (modprobe l2tp_eth l2tp_netlink); exiting');
    return 1;
  }

  const lastId = cfg.tunnelIdBase + cfg.maxTunnels - 1;
  let lock;
  try {
    lock = lockIdRange(nodeLockFs, RUN_DIR, cfg.tunnelIdBase, lastId, process.pid);
  } catch (e) {
    lock = null;
    loop.log('warning', `cannot use ${RUN_DIR} for the tunnel id lock (${(e as Error).message}); ` +
      'another broker on this host with an overlapping id range would not be noticed');
  }
  if (lock && !lock.ok) {
    loop.log('error', `${lock.message}; exiting`);
    return 1;
  }
  const releaseLock = lock?.ok ? lock.release : () => {};
  process.on('exit', releaseLock);

  const core = new BrokerCore(cfg, {
    key: randomBytes(32),
    mac: (key, message) => createHmac('sha1', key).update(message).digest(),
    startMs: loop.now(),
    random: Math.random,
    errno: native.errno,
    tcPath,
    logEnabled: enabled,
  });
  // tunnels beyond the budget are refused (usage 0xFFFF, ERROR) before descriptors run out
  if (typeof fdLimit !== 'number') core.setFdLimit(fdLimit.soft);
  const jobs = new JobRunner(native, logLoop, { timeoutMs: timers.hookTimeout, maxRunning: cfg.maxConcurrentJobs, nice: cfg.jobNice }, core.counters);
  const ops = new BrokerOps(core, cfg, path, native, loop, jobs);
  // TD_DATAGRAM_BATCH=0: one callback and recvfrom per datagram, as before (for benchmarks);
  // TD_TUNNEL_READ_MS: the tunnel sockets' read interval (TUNNEL_READ_MS; 0: each read as it is readable)
  const readMs = process.env.TD_TUNNEL_READ_MS;
  const reader = process.env.TD_DATAGRAM_BATCH === '0' ? undefined
    : nodeDatagramReader(native, readMs !== undefined && /^\d+$/.test(readMs) ? Math.min(Number(readMs), 10000) : TUNNEL_READ_MS);
  // the kernel's slow calls (session create/delete wait for RTNL and RCU) on the C core's netlink
  // thread; TD_NETLINK_WORKER=0: on the event loop, as before (for benchmarks)
  const { NetlinkWorker, hasNetlinkWorker } = await import('../../netlink/worker.js');
  let worker;
  let netlinkThread: { stop(): void } | undefined;
  if (process.env.TD_NETLINK_WORKER !== '0' && hasNetlinkWorker(native)) {
    const w = NetlinkWorker.start(native, logLoop);
    if (typeof w === 'number') loop.log('warning', `cannot start the netlink thread (${native.strerror(-w)}): kernel calls wait on the event loop`);
    else worker = ops.wrapWorker(netlinkThread = w);
  }
  const driver = new BrokerDriver(core, cfg, native, logLoop, ops.wrapKernel(kernel), jobs, reader, worker);
  driver.cleanupStaleKernelState();
  if (driver.openListeners() === 0) {
    loop.log('error', `no port of broker.port (${cfg.ports.join(',')}) could be opened on ${cfg.address}; exiting`);
    releaseLock();
    return 1;
  }
  try {
    await ops.start(driver);
    onSighup = () => { ops.reload('SIGHUP'); };
  } catch (e) {
    loop.log('error', `${e instanceof Error ? e.message : String(e)}; exiting`);
    ops.stopped();
    return 1;
  }
  loop.log('info', `broker started: tunnel ids ${cfg.tunnelIdBase}-${cfg.tunnelIdBase + cfg.maxTunnels - 1}, ` +
    `${cfg.pmtu ? `fixed tunnel MTU ${cfg.pmtu}` : 'automatic PMTU discovery'}, ` +
    `kernel calls ${worker ? 'on the netlink thread' : 'on the event loop'}`);

  const countersTimer = setInterval(() => {
    loop.log('debug', core.counters.line());
    for (const line of core.statusSummary(loop.now())) loop.log('debug', `status: ${line}`);
  }, COUNTERS_LOG_MS);
  countersTimer.unref();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (name: string): void => {
      if (stopping) {
        loop.log('info', `${name} received, already shutting down`);
        return;
      }
      stopping = true;
      const stopAt = loop.now();
      const cpuAt = process.cpuUsage();
      loop.log('info', `${name} received: closing ${core.tunnelCount} tunnels (giving up after ${SHUTDOWN_GRACE_MS / 1000} s)`);
      clearInterval(countersTimer);
      ops.stopping();
      driver.shutdown(SHUTDOWN_GRACE_MS, (clean) => {
        kernel.close();
        netlinkThread?.stop();
        ops.stopped();
        releaseLock();
        const cpu = process.cpuUsage(cpuAt);
        loop.log('info', `shutdown ${clean ? 'complete' : 'finished with hooks abandoned'} after ` +
          `${Math.round(loop.now() - stopAt)} ms (broker CPU ${Math.round((cpu.user + cpu.system) / 1000)} ms), exiting; ` +
          core.counters.line());
        resolve(0);
      });
    };
    loop.onSignal(osConstants.signals.SIGTERM, () => stop('SIGTERM'));
    loop.onSignal(osConstants.signals.SIGINT, () => stop('SIGINT'));
    loop.onSignal(osConstants.signals.SIGUSR1, () => {
      const now = loop.now();
      loop.log('info', core.counters.line());
      for (const line of core.statusSummary(now)) loop.log('info', `status: ${line}`);
    });
  });
}

/** LockFs on node:fs; a broker is a live process whose command line names tunneldigger or a
 *  broker (so a pid reused by something else does not block the start). */
export const nodeLockFs: LockFs = {
  mkdirp: (dir) => { mkdirSync(dir, { recursive: true, mode: 0o755 }); },
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  read: (path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  },
  createExclusive: (path, text) => {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return true;
  },
  remove: (path) => {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  },
  isBroker: (pid) => {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
    }
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return /tunneldigger|broker/.test(cmdline);
    } catch {
      return true; // no /proc: trust kill(0)
    }
  },
};
