// Dependencies point one way (docs/architecture.md, "Layers"): every import of every src/**/*.ts,
// static, type-only or dynamic, parsed with the TypeScript scanner, must go to the importing
// file's own layer or to one the layer lists in `uses`. LAYERS below is the only definition of
// the order; a new directory under src/ fails this test until it is given a layer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

interface Layer {
  name: string;
  /** repository-relative files, or directories ending in '/' (the longest match wins) */
  paths: string[];
  /** layers this one may import; each must come earlier in LAYERS */
  uses: string[];
  /** non-relative modules it may import: exact names, or a prefix ending in ':' or '/' */
  external?: string[];
}

// Lowest first.
export const LAYERS: Layer[] = [
  // what the cores are written against: the Loop and Native interfaces, the action queue, text
  { name: 'interfaces', paths: ['src/native.ts', 'src/utf8.ts', 'src/ip-text.ts', 'src/version.ts', 'src/runtime/loop.ts', 'src/runtime/action-queue.ts', 'src/runtime/datagram-batch.ts'], uses: [] },
  { name: 'protocol', paths: ['src/protocol/'], uses: ['interfaces'] },
  { name: 'netlink', paths: ['src/netlink/'], uses: ['interfaces'] },
  { name: 'process', paths: ['src/process/'], uses: ['interfaces'] },
  // the two runtime adapters: implement the interfaces, know nothing of broker or client
  { name: 'node-runtime', paths: ['src/runtime/node/'], uses: ['interfaces'], external: ['node:'] },
  { name: 'quickjs-runtime', paths: ['src/runtime/quickjs/'], uses: ['interfaces'], external: ['tdnative', 'tdproc'] },
  // the sans-IO cores and their drivers: runtime-neutral (the client also runs under Node in tests)
  { name: 'broker', paths: ['src/broker/'], uses: ['interfaces', 'protocol', 'netlink', 'process'], external: ['prom-client'] },
  { name: 'client', paths: ['src/client/'], uses: ['interfaces', 'protocol', 'netlink', 'process'] },
  // composition roots: pick a runtime, build the core, start it
  {
    name: 'broker-main', paths: ['src/main/broker/'],
    uses: ['interfaces', 'protocol', 'netlink', 'process', 'node-runtime', 'broker'], external: ['node:'],
  },
  {
    name: 'client-main', paths: ['src/main/client/'],
    uses: ['interfaces', 'protocol', 'netlink', 'process', 'quickjs-runtime', 'client'], external: ['tdproc'],
  },
];

/** Problems with the table itself: unknown or later layers in `uses`, duplicate names. */
export function checkTable(layers: Layer[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.name)) problems.push(`layer ${l.name} is defined twice`);
    for (const u of l.uses) if (!seen.has(u)) problems.push(`layer ${l.name} uses ${u}, which is not a lower layer`);
    seen.add(l.name);
  }
  return problems;
}

/** The layer of a repository-relative path: the longest matching entry, or undefined. */
export function layerOf(layers: Layer[], file: string): Layer | undefined {
  let best: Layer | undefined;
  let bestLen = -1;
  for (const l of layers) {
    for (const p of l.paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLen) { best = l; bestLen = p.length; }
    }
  }
  return best;
}

/** Every module specifier in a TS source: imports, re-exports, import types, dynamic imports. */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** files: repository-relative path -> source. Returns one line per violation. */
export function checkLayers(layers: Layer[], files: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, source] of files) {
    const own = layerOf(layers, file);
    if (!own) { problems.push(`${file}: in no layer (add it to LAYERS in test/unit/layers.test.ts)`); continue; }
    for (const spec of importsOf(source)) {
      if (!spec.startsWith('.')) {
        const ok = (own.external ?? []).some((e) => (e.endsWith(':') || e.endsWith('/') ? spec.startsWith(e) : spec === e));
        if (!ok) problems.push(`${file}: imports '${spec}', which layer ${own.name} may not use (allowed: ${(own.external ?? []).join(', ') || 'none'})`);
        continue;
      }
      const target = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts');
      if (!files.has(target)) { problems.push(`${file}: imports '${spec}', which is no file under src/ (${target})`); continue; }
      const to = layerOf(layers, target);
      if (!to || to === own) continue; // unlayered targets are reported on their own
      if (!own.uses.includes(to.name)) {
        problems.push(`${file}: imports ${target} (layer ${to.name}); layer ${own.name} may only use ${own.uses.join(', ') || 'nothing'}`);
      }
    }
  }
  return problems;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

function sourceTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.set(relative(root, p).split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(join(root, 'src'));
  return files;
}

test('the layer table lists each layer once, after everything it uses', () => {
  assert.equal(checkTable(LAYERS), []);
  assert.equal(checkTable([{ name: 'a', paths: [], uses: ['b'] }, { name: 'b', paths: [], uses: [] }]),
    ['layer a uses b, which is not a lower layer']);
});

test('the scanner finds static, type-only, re-exported and dynamic imports', () => {
  const src = `import { a } from './a.js';\nimport type { B } from "../b.js";\nexport { c } from './c.js';\n` +
    `// import { no } from './comment.js';\nconst s = "import x from './string.js'";\nconst d = await import('./d.js');\n`;
  assert.equal(importsOf(src).sort(), ['../b.js', './a.js', './c.js', './d.js']);
});

test('the checker reports upward and sideways imports, foreign modules and unlayered files', () => {
  const files = new Map<string, string>([
    ['src/native.ts', ''],
    ['src/broker/tunnel.ts', `import { main } from '../main/broker/broker-main.js';\n`],
    ['src/client/client.ts', `import type { BrokerCore } from '../broker/broker.js';\nimport { x } from './missing.js';\n`],
    ['src/broker/broker.ts', `const m = await import('../runtime/node/native.js');\nimport { readFileSync } from 'node:fs';\n`],
    ['src/runtime/node/native.ts', `import type { Native } from '../../native.js';\nimport { createRequire } from 'node:module';\n`],
    ['src/main/broker/broker-main.ts', `import { BrokerCore } from '../../broker/broker.js';\n`],
    ['src/extra/thing.ts', ''],
  ]);
  assert.equal(checkLayers(LAYERS, files), [
    "src/broker/tunnel.ts: imports src/main/broker/broker-main.ts (layer broker-main); layer broker may only use interfaces, protocol, netlink, process",
    "src/client/client.ts: imports src/broker/broker.ts (layer broker); layer client may only use interfaces, protocol, netlink, process",
    "src/client/client.ts: imports './missing.js', which is no file under src/ (src/client/missing.ts)",
    "src/broker/broker.ts: imports src/runtime/node/native.ts (layer node-runtime); layer broker may only use interfaces, protocol, netlink, process",
    "src/broker/broker.ts: imports 'node:fs', which layer broker may not use (allowed: prom-client)",
    'src/extra/thing.ts: in no layer (add it to LAYERS in test/unit/layers.test.ts)',
  ]);
});

test('src/: every file is in a layer and every import points to its own layer or a lower one', () => {
  const files = sourceTree();
  assert.ok(files.has('src/main/broker/broker-main.ts') && files.has('src/runtime/loop.ts'), `source tree not found under ${root}`);
  assert.ok(files.size > 40, `only ${files.size} files under src/`);
  assert.equal(checkLayers(LAYERS, files), []);
});

test.run();
