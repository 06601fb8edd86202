// Entry of the QuickJS client bundle (rollup -> build/qjs/client.js -> qjsc bytecode): wires
// the QuickJS runtime (os event loop, tdnative) to the client. Hidden --selftest-* flags
// check the runtime alone (test/unit/qjs-binary.test.ts).
import { argv } from 'tdproc';
import { clientMain } from './client-main.js';
import { native } from '../../runtime/quickjs/native.js';
import { createLoop } from '../../runtime/quickjs/loop.js';
import { runSelfTest } from './selftest.js';

const loop = createLoop();
if (!runSelfTest(argv, native, loop)) clientMain(argv, native, loop);
