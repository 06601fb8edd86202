// QuickJS entry of the client steady-state harness (bench/client-steady.ts runs it, mk/bench.mk
// builds it into build/bench/tunneldigger-steady): the real client core, driver, event loop
// (qjs-native/td_qjs_loop.c) and tdnative bindings, only with
// * a kernel that says yes (the build host has no L2TP), and
// * the keepalive interval taken from the first argument (ms), so that thousands of keepalive
//   rounds fit in a minute (the broker's interval and the keepalive slack scaled with it); the work per round does not depend on the interval. PMTU rounds
//   start after the second argument (ms; 0 = never), the rest is the client's command line.
// Not shipped: the client's own bundle (src/main/client/quickjs-main.ts) has none of this.
import { argv } from 'tdproc';
import type { ClientKernel } from '../src/client/driver.js';
import { clientMain } from '../src/main/client/client-main.js';
import { timers } from '../src/protocol/constants.js';
import { createLoop } from '../src/runtime/quickjs/loop.js';
import { native } from '../src/runtime/quickjs/native.js';

const kernel: ClientKernel = {
  resolveL2tpFamily: () => 30,
  createTunnel: () => 0,
  deleteTunnel: () => -native.errno.ENOENT,
  createSession: () => 0,
  deleteSession: () => -native.errno.ENOENT,
  setSessionMtu: () => 0,
  setLinkMtu: () => 0,
  setLinkUp: () => 0,
  getLink: () => -native.errno.ENODEV,
};

timers.clientKeepalive = +argv[0]!;
// the broker stand-in's keepalives come at the same interval; the slack scales with it (1 s of 5)
timers.brokerKeepalive = timers.clientKeepalive;
timers.clientKeepaliveSlack = timers.clientKeepalive / 5;
const pmtuAfter = +argv[1]!;
timers.pmtuReprobeFirst = pmtuAfter > 0 ? pmtuAfter : 1e12;
clientMain(argv.slice(2), native, createLoop(), kernel);
