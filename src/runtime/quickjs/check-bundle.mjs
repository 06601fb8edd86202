// usage: node src/runtime/quickjs/check-bundle.mjs build/qjs/client.js
// Build-time guard for the QuickJS client bundle (run by mk/quickjs.mk after rollup). The
// context made by qjs-native/qjs_main.c has only some intrinsics (no RegExp, Date, JSON...:
// bench/size.md), so a bundle that uses anything else would build fine and then throw a
// ReferenceError on the router. This fails the build instead, naming what to change.
import { readFileSync } from 'node:fs';
import { minify } from 'terser';

// Object.getOwnPropertyNames(globalThis) in the client binary (BaseObjects, MapSet, TypedArrays,
// Promise), minus eval and Function: without the parser they can only throw.
const PROVIDED = new Set(`AggregateError Array ArrayBuffer BigInt BigInt64Array BigUint64Array
  Boolean DataView Error EvalError Float32Array Float64Array Infinity Int16Array Int32Array
  Int8Array InternalError Map Math NaN Number Object Promise RangeError ReferenceError Reflect Set
  SharedArrayBuffer String Symbol SyntaxError TypeError URIError Uint16Array Uint32Array
  Uint8Array Uint8ClampedArray WeakMap WeakSet decodeURI decodeURIComponent encodeURI
  encodeURIComponent escape globalThis isFinite isNaN parseFloat parseInt undefined
  unescape`.split(/\s+/));

const file = process.argv[2];
if (!file) {
  console.error('usage: check-bundle.mjs <bundle.js>');
  process.exit(2);
}
const { ast } = await minify(readFileSync(file, 'utf8'), {
  module: true, compress: false, mangle: false, format: { ast: true, code: false },
});
ast.figure_out_scope({ module: true });
const problems = [...ast.globals.keys()].filter((g) => !PROVIDED.has(g)).sort()
  .map((g) => `global '${g}' does not exist in the QuickJS client (qjs-native/qjs_main.c)`);
let regexps = 0;
ast.walk({
  _visit(node, descend) {
    if (node.TYPE === 'RegExp') regexps++;
    if (descend) descend.call(node);
  },
});
if (regexps) problems.push(`${regexps} regexp literal(s): the QuickJS client has no RegExp; use string code`);
if (problems.length) {
  for (const p of problems) console.error(`check-bundle: ${file}: ${p}`);
  process.exit(1);
}
