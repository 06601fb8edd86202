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
        compress: { passes: 2 },
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
