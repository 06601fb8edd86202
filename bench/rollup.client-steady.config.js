// Bundles the client steady-state harness (bench/client-steady-qjs.ts) into
// build/bench/client-steady.js (mk/bench.mk compiles it to bytecode with the client's qjsc
// flags). The client's own rollup config with another entry, so the harness runs the same
// minified code as build/x86_64/tunneldigger.
import typescript from '@rollup/plugin-typescript';
import client from '../rollup.config.js';

export default {
  ...client,
  input: 'bench/client-steady-qjs.ts',
  plugins: [
    typescript({ tsconfig: 'bench/tsconfig.client-steady.json', noEmitOnError: true }),
    ...client.plugins.slice(1),
  ],
  output: { ...client.output, file: 'build/bench/client-steady.js' },
};
