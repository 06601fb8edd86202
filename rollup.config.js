// Bundles the QuickJS client (src/main/client/quickjs-main.ts) into build/qjs/client.js, which
// qjsc compiles to bytecode (mk/quickjs.mk). TD_MINIFY=0 keeps the bundle readable.
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';

const minify = process.env.TD_MINIFY !== '0';

export default {
  input: 'src/main/client/quickjs-main.ts',
  // C modules registered by qjs-native/qjs_main.c
  external: ['tdnative', 'tdproc'],
  plugins: [
    typescript({
      // its own tsconfig: only quickjs-main.ts and its imports, no Node types, no emit of the project
      tsconfig: 'src/main/client/tsconfig.json',
      noEmitOnError: true,
    }),
    minify &&
      terser({
        ecma: 2020,
        module: true,
        // reduce_funcs off: terser would turn a function called from one place (parseFrame in
        // BrokerContext.feed, ...) into a function expression called in place, and QuickJS
        // creates a closure object for it at every call (a tenth of an idle client's work)
        compress: { passes: 2, reduce_funcs: false },
        format: { comments: false },
      }),
  ],
  output: {
    file: 'build/qjs/client.js',
    format: 'es',
  },
  onwarn(warning, warn) {
    // any warning (unresolved import, circular dependency...) fails the build
    throw new Error(`rollup: ${warning.message}`);
  },
};
