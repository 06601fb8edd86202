// Bundles the QuickJS side of the codec benchmark (bench/codec-qjs.ts) into
// build/bench/codec-qjs.js for `qjs -m` (mk/bench.mk). Not minified: terser does not change
// what QuickJS executes per operation, and a readable bundle is easier to check.
import typescript from '@rollup/plugin-typescript';

export default {
  input: 'bench/codec-qjs.ts',
  plugins: [typescript({ tsconfig: 'bench/tsconfig.qjs.json', noEmitOnError: true })],
  output: { file: 'build/bench/codec-qjs.js', format: 'es' },
  onwarn(warning) {
    // an unresolved import would only fail at run time under qjs: fail the build instead
    throw new Error(`rollup: ${warning.message}`);
  },
};
