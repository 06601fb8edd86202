// Model of the broker's shutdown path (docs/performance.md "E: what the last 5 s are"), run in
// the VM by bench/shutdown-model/vm-model.sh after `make ts native`: 100 l2tpeth tunnels (ip
// -batch), one pipelined TUNNEL_DELETE each (NetlinkKernel.deleteTunnels), listTunnels every
// 100 ms, a #!/bin/sh down hook per tunnel once gone, through the broker's JobRunner
// (posix_spawn). Orders: interleaved (each hook as its tunnel goes, what the broker does),
// after (every hook once the kernel is empty), throttle (at most `limit` hooks while the kernel
// removes, then the cap). Prints one MODEL2 line per run.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const W = new URL('../../build/js/src', import.meta.url).href;
const { native } = await import(`${W}/runtime/node/native.js`);
const { NetlinkKernel } = await import(`${W}/netlink/kernel.js`);
const { NodeLoop } = await import(`${W}/runtime/node/loop.js`);
const { JobRunner } = await import(`${W}/broker/job-runner.js`);
const k = new NetlinkKernel(native);
k.resolveL2tpFamily();
const loop = new NodeLoop(native, 'warning');
writeFileSync('/tmp/hook.sh', '#!/bin/sh\necho "down $1" >> /tmp/hooks.log\n', { mode: 0o755 });
const now = () => Number(process.hrtime.bigint() / 1000000n);
let base = 1;
function make(n) {
  const lines = [];
  for (let i = base; i < base + n; i++) {
    lines.push(`l2tp add tunnel tunnel_id ${i} peer_tunnel_id ${i} encap udp local 198.51.100.1 remote 198.51.100.2 udp_sport ${20000 + i} udp_dport 30000`);
    lines.push(`l2tp add session tunnel_id ${i} session_id 1 peer_session_id 1 name l2e${i}`);
  }
  writeFileSync('/tmp/mk', lines.join('\n') + '\n');
  execFileSync('ip', ['-batch', '/tmp/mk']);
  const ids = Array.from({ length: n }, (_, j) => base + j);
  base += n;
  return ids;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function run(label, { n = 100, strategy = 'interleaved', limit = 32, poll = 100, hooks = true, hookCap = 32 }) {
  const ids = make(n);
  await sleep(800);
  const runner = new JobRunner(native, loop, { timeoutMs: 30000, maxRunning: hookCap });
  const t0 = now();
  k.deleteTunnels(ids);
  const pending = new Set(ids);
  const held = [];
  let kernelAt = -1, lastHookStart = 0;
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  const pump = () => {
    const cap = kernelAt < 0 ? (strategy === 'after' ? 0 : limit) : hookCap;
    while (held.length && runner.runningCount < cap) {
      const id = held.shift();
      runner.submit({ queue: `t${id}`, path: '/tmp/hook.sh', args: [String(id)], label: `down ${id}`, logArgs: [] });
      lastHookStart = now() - t0;
    }
  };
  runner.onFinish = () => pump();
  const tick = () => {
    const listed = k.listTunnels();
    const still = new Set(listed.map((t) => t.tunnelId));
    for (const id of [...pending]) if (!still.has(id)) { pending.delete(id); if (hooks) held.push(id); }
    if (pending.size === 0) kernelAt = now() - t0;
    pump();
    if (pending.size === 0) { runner.whenIdle(() => resolveAll()); return; }
    setTimeout(tick, poll);
  };
  setTimeout(tick, poll);
  await all;
  const end = now() - t0;
  console.log(`MODEL2 ${label}: n=${n} ${hooks ? strategy + ' cap ' + hookCap : 'no hooks'} poll=${poll}: kernel empty ${kernelAt} ms, last hook started ${lastHookStart} ms, hooks done ${end} ms (${runner.startedCount} run, peak ${runner.peakRunning}); guest load ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ')[0]}`);
}
for (let r = 1; r <= 2; r++) {
  await run(`r${r}`, { hooks: false });
  await run(`r${r}`, { strategy: 'interleaved', limit: 32, hookCap: 32 });
  await run(`r${r}`, { strategy: 'after', hookCap: 32 });
  await run(`r${r}`, { strategy: 'throttle', limit: 2, hookCap: 32 });
  await run(`r${r}`, { strategy: 'interleaved', limit: 8, hookCap: 8 });
  await run(`r${r}`, { strategy: 'interleaved', limit: 64, hookCap: 64 });
}
console.log('MODEL2 done');
