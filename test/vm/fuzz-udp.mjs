// UDP fuzzer for the VM scenarios: sends random, truncated, oversized and lying Tunneldigger
// datagrams at one endpoint, through the project's Node addon (so it can share a port with
// SO_REUSEPORT like the broker does).
//
// node test/vm/fuzz-udp.mjs --to IP:PORT [--count N] [--seed S] [--bind IP[:PORT]]
//     [--reuseport] [--dev IFNAME] [--connect IP:PORT] [--skip-types 3,128]
//
// --bind with --reuseport (and --dev) joins the port group of a broker listener on IP:PORT;
// --connect then connects that socket to an unused endpoint so it receives none of the real
// traffic (a connected socket only matches its own peer) while sendto() still reaches --to.
// --skip-types: message types never sent with a well-formed header (e.g. ERROR 3 would
// legitimately close the tunnel under test, LIMIT 128 would legitimately throttle it).
// Prints one summary line: "fuzz: sent N datagrams (K bytes) to IP:PORT, E send errors, per kind: ...".
const root = process.env.TD_ROOT ?? new URL('../..', import.meta.url).pathname;
const { native } = await import(`${root}/build/js/src/runtime/node/native.js`);

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(`--${name}`);
const ep = (s) => {
  const [ip, port] = s.split(':');
  return { ip, port: Number(port ?? 0) };
};
const die = (msg) => {
  console.error(`fuzz: ${msg}`);
  process.exit(2);
};
if (!opt('to')) die('--to IP:PORT is required');
const to = ep(opt('to'));
const count = Number(opt('count', '2000'));
const skip = new Set(String(opt('skip-types', '')).split(',').filter(Boolean).map(Number));

// small deterministic PRNG (mulberry32) so a failing run can be repeated with --seed
let seed = Number(opt('seed', String(Date.now() & 0x7fffffff))) >>> 0;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n) => Math.floor(rnd() * n);
const bytes = (n) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const header = (type, len) => Uint8Array.of(0x80, 0x73, 0xa7, 0x01, type, len);
const u32 = (v) => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
/** A message type that may be sent with a well-formed header. */
const type = () => {
  for (;;) {
    const t = rnd() < 0.7 ? int(12) : rnd() < 0.5 ? 0x80 | int(4) : int(256);
    if (!skip.has(t)) return t;
  }
};
const okType = (t) => !skip.has(t);

// Each generator returns one datagram. Well-formed-header generators respect --skip-types.
const kinds = {
  // pure noise, 0..2047 bytes (incl. empty datagrams)
  random: () => bytes(int(2048)),
  // noise behind a valid header
  'header-noise': () => {
    const n = int(300);
    return cat(header(type(), Math.min(255, n)), bytes(n));
  },
  // valid header whose length byte promises more than the datagram holds
  'lying-length': () => {
    const len = 1 + int(255);
    return cat(header(type(), len), bytes(int(len)));
  },
  // a well-formed message cut short anywhere (including inside the header)
  truncated: () => {
    const len = int(64);
    const d = cat(header(type(), len), bytes(len));
    return d.subarray(0, int(d.length));
  },
  // bad magic / version, otherwise plausible
  'bad-magic': () => {
    const d = cat(header(type(), 8), bytes(8));
    d[int(4)] ^= 1 + int(255);
    return d;
  },
  // PREPARE with random cookies (some with a lying uuid length, some oversized uuid)
  prepare: () => {
    if (!okType(2)) return bytes(20);
    const uuid = bytes(int(3) === 0 ? int(200) : 36);
    const ulen = rnd() < 0.2 ? int(256) : uuid.length;
    const payload = cat(bytes(8), Uint8Array.of(ulen), uuid, u32(int(2 ** 32)), u32(int(2 ** 32)));
    const n = Math.min(255, payload.length);
    return cat(header(2, n), payload.subarray(0, n));
  },
  // every type with 0..8 payload bytes (short payloads, odd sizes)
  'short-payload': () => {
    const n = int(9);
    return cat(header(type(), n), bytes(n));
  },
  // LIMIT-shaped reliable messages with odd config lengths (when allowed)
  limit: () => {
    if (!okType(0x80)) return bytes(14);
    const cfgLen = int(8);
    const payload = cat(bytes(2), Uint8Array.of(int(3), cfgLen), bytes(int(cfgLen + 2)));
    return cat(header(0x80, Math.min(255, payload.length)), payload);
  },
  // near the UDP maximum: fragmented on the wire, truncated by the receivers' buffers
  huge: () => {
    const n = 60000 + int(5000);
    const d = bytes(n);
    if (rnd() < 0.5) d.set(header(type(), int(256)));
    return d;
  },
};
const names = Object.keys(kinds);
const weights = { huge: 0.01 };

const fd = native.udpSocket();
if (fd < 0) die(`socket: ${native.strerror(-fd)}`);
let rc = 0;
if (flag('reuseport') && (rc = native.setReusePort(fd)) < 0) die(`SO_REUSEPORT: ${native.strerror(-rc)}`);
if (opt('dev') && (rc = native.bindToDevice(fd, opt('dev'))) < 0) die(`SO_BINDTODEVICE: ${native.strerror(-rc)}`);
if (opt('bind')) {
  const b = ep(opt('bind'));
  if ((rc = native.bind(fd, b.ip, b.port)) < 0) die(`bind ${opt('bind')}: ${native.strerror(-rc)}`);
}
if (opt('connect')) {
  const c = ep(opt('connect'));
  if ((rc = native.connect(fd, c.ip, c.port)) < 0) die(`connect ${opt('connect')}: ${native.strerror(-rc)}`);
}

const perKind = Object.fromEntries(names.map((k) => [k, 0]));
let sentBytes = 0;
let errors = 0;
const firstSeed = seed;
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
for (let i = 0; i < count; i++) {
  let k;
  do k = names[int(names.length)];
  while (weights[k] !== undefined && rnd() > weights[k] * names.length);
  const d = kinds[k]();
  const n = native.sendTo(fd, d, to.ip, to.port);
  if (n < 0) errors++;
  else {
    sentBytes += n;
    perKind[k]++;
  }
  // bursts of 100, then a breather, so the receiver's socket buffer is not simply overrun
  if (i % 100 === 99) sleep(15);
}
native.close(fd);
console.log(`fuzz: sent ${count - errors} datagrams (${sentBytes} bytes) to ${to.ip}:${to.port} (seed ${firstSeed}), ` +
  `${errors} send errors, per kind: ${names.map((k) => `${k}=${perKind[k]}`).join(' ')}`);
