// The file descriptor budget logged at broker start (src/broker/fd-budget.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FD_FIXED_RESERVE, FD_PER_JOB, fdBudget, fdBudgetLog } from '../../src/broker/fd-budget.js';
import { DEFAULT_MAX_RUNNING } from '../../src/broker/job-runner.js';
import { native as hostNative } from '../../src/runtime/node/native.js';

const cfg = { ports: [8942, 53, 123], maxConcurrentJobs: 100, maxTunnels: 1000 };

test('reserve: fixed part, one per listener, two per concurrent hook; the rest is for tunnels', () => {
  assert.is(FD_PER_JOB, 2);
  const b = fdBudget(65536, cfg);
  assert.is(b.reserve, FD_FIXED_RESERVE + 3 + 200);
  assert.is(b.tunnels, 65536 - b.reserve);
  // max_concurrent absent: the job runner's default cap
  assert.is(fdBudget(65536, { ports: [8942] }).reserve, FD_FIXED_RESERVE + 1 + 2 * DEFAULT_MAX_RUNNING);
  // a listener per port and address: dual stack on three ports holds six
  assert.is(fdBudget(65536, { ports: [8942, 53, 123], address: '198.51.100.1,2001:db8::1' }).reserve,
    FD_FIXED_RESERVE + 6 + 2 * DEFAULT_MAX_RUNNING);
  assert.is(fdBudget(100, cfg).tunnels, 0, 'never negative');
  assert.is(fdBudget(Infinity, cfg).tunnels, Infinity);
});

test('the log line: info when max_tunnels fits, a warning naming the fix when not, errno text on failure', () => {
  const ok = fdBudgetLog({ soft: 65536, hard: 65536 }, cfg, hostNative.strerror);
  assert.is(ok.level, 'info');
  assert.is(ok.message, `file descriptor limit 65536: room for ${65536 - 267} tunnels (one socket each) after a reserve of 267 ` +
    `(${FD_FIXED_RESERVE} fixed, 3 listeners, 2 × hooks.max_concurrent 100)`);
  const tight = fdBudgetLog({ soft: 1024, hard: 1024 }, cfg, hostNative.strerror);
  assert.is(tight.level, 'warning');
  assert.ok(tight.message.includes(`room for ${1024 - 267} tunnels`), tight.message);
  assert.ok(tight.message.endsWith(`broker.max_tunnels is 1000, so tunnels beyond ${1024 - 267} are refused (usage 0xFFFF) ` +
    '(raise the hard limit: LimitNOFILE= in the systemd unit, or ulimit -Hn)'), tight.message);
  assert.ok(fdBudgetLog({ soft: Infinity, hard: Infinity }, cfg, hostNative.strerror).message
    .startsWith('file descriptor limit unlimited: room for any number of tunnels'));
  const failed = fdBudgetLog(-hostNative.errno.EPERM, cfg, hostNative.strerror);
  assert.is(failed.level, 'warning');
  assert.is(failed.message, `cannot raise the file descriptor limit (RLIMIT_NOFILE): ${hostNative.strerror(hostNative.errno.EPERM)}; keeping the current one`);
});

test.run();
