// Models of the two package managers' version orderings, written from their documented rules
// (docs/versioning.md), so that tests can check where our version sorts on a router:
//  * opkg (OpenWrt <= 24.10): dpkg's rules. "[epoch:]upstream[-revision]", epoch a number
//    (default 0), revision after the LAST '-'. Upstream and revision are compared with
//    `verrevcmp`: alternate runs of non-digits (char by char: '~' < end of run < letters <
//    everything else, by ASCII within a class) and runs of digits (numeric, leading zeros
//    ignored).
//  * apk v3 (OpenWrt >= 25.12): "digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r#}".
//    Token by token: numbers numerically (a '.'-component with a leading zero compares as a
//    string), one letter, suffixes alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p,
//    the ~hash as a string, -rN numerically. When one string runs out of tokens first: a
//    pre-release suffix on the longer one makes it smaller, otherwise the side whose next token
//    comes later in the grammar is the smaller one (End is last: "1.0-r1" > "1.0", "1.0.1" > "1.0").
// Both return <0, 0 or >0 like strcmp.

// ---- opkg / dpkg ------------------------------------------------------------------------------

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}
function isAlpha(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Weight of one character of a non-digit run; '' is the end of the run.
function weight(c: string): number {
  if (c === '~') return -1;
  if (c === '' || isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** dpkg/opkg `verrevcmp` on one part (upstream version or revision). */
export function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // non-digit run
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const wa = weight(i < a.length && !isDigit(a[i]) ? a[i] : '');
      const wb = weight(j < b.length && !isDigit(b[j]) ? b[j] : '');
      if (wa !== wb) return wa - wb;
      if (i < a.length && !isDigit(a[i])) i++;
      if (j < b.length && !isDigit(b[j])) j++;
    }
    // digit run, numerically
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    const si = i;
    const sj = j;
    while (i < a.length && isDigit(a[i])) i++;
    while (j < b.length && isDigit(b[j])) j++;
    const da = a.slice(si, i);
    const db = b.slice(sj, j);
    if (da.length !== db.length) return da.length - db.length;
    if (da !== db) return da < db ? -1 : 1;
  }
  return 0;
}

export interface OpkgVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Splits "[epoch:]upstream[-revision]" the way opkg does (revision after the last '-'). */
export function parseOpkgVersion(v: string): OpkgVersion {
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const e = v.slice(0, colon);
    if (!/^[0-9]+$/.test(e)) throw new Error(`opkg version '${v}': epoch '${e}' is not a number`);
    epoch = Number(e);
    rest = v.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash < 0) return { epoch, upstream: rest, revision: '' };
  return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
}

/** opkg's ordering of two full version strings. */
export function opkgCompare(a: string, b: string): number {
  const pa = parseOpkgVersion(a);
  const pb = parseOpkgVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return verrevcmp(pa.upstream, pb.upstream) || verrevcmp(pa.revision, pb.revision);
}

// ---- apk v3 -----------------------------------------------------------------------------------

// Token kinds in grammar order; the order matters for the tail rule in apkCompare.
enum Tok {
  InitialDigit,
  Digit,
  Letter,
  Suffix,
  SuffixNo,
  CommitHash,
  RevisionNo,
  End,
  Invalid,
}
const PRE_SUFFIXES = ['alpha', 'beta', 'pre', 'rc'];
const POST_SUFFIXES = ['cvs', 'svn', 'git', 'hg', 'p'];
const SUFFIX_NONE = PRE_SUFFIXES.length + 1; // alpha = 1 ... rc = 4, none = 5, cvs = 6 ... p = 10

interface Token {
  kind: Tok;
  text: string;
  num: bigint;
  suffix: number;
}

/** Tokens of an apk version; the last one is End, or Invalid where the grammar is broken. */
export function apkTokens(v: string): { kind: string; text: string }[] {
  return tokenize(v).map((t) => ({ kind: Tok[t.kind], text: t.text }));
}

function tokenize(v: string): Token[] {
  const out: Token[] = [];
  let p = 0;
  const digits = (): string => {
    const s = p;
    while (p < v.length && isDigit(v[p])) p++;
    return v.slice(s, p);
  };
  const push = (kind: Tok, text: string, suffix = 0): void => {
    out.push({ kind, text, num: /^[0-9]+$/.test(text) ? BigInt(text) : 0n, suffix });
  };
  const first = digits();
  if (first === '') {
    push(Tok.Invalid, '');
    return out;
  }
  push(Tok.InitialDigit, first);
  for (;;) {
    const prev = out[out.length - 1].kind;
    if (p >= v.length) {
      push(Tok.End, '');
      return out;
    }
    const c = v[p];
    let ok = true;
    if (c >= 'a' && c <= 'z') {
      ok = prev <= Tok.Digit;
      if (ok) push(Tok.Letter, v[p++]);
    } else if (c === '.' || isDigit(c)) {
      if (c === '.') {
        ok = prev <= Tok.Digit;
        p++;
      }
      if (ok && (prev === Tok.InitialDigit || prev === Tok.Digit)) {
        const d = digits();
        ok = d !== '';
        if (ok) push(Tok.Digit, d);
      } else if (ok && prev === Tok.Suffix) {
        const d = digits();
        ok = d !== '';
        if (ok) push(Tok.SuffixNo, d);
      } else ok = false;
    } else if (c === '_') {
      ok = prev <= Tok.SuffixNo;
      if (ok) {
        p++;
        const s = p;
        while (p < v.length && v[p] >= 'a' && v[p] <= 'z') p++;
        const word = v.slice(s, p);
        const pre = PRE_SUFFIXES.indexOf(word);
        const post = POST_SUFFIXES.indexOf(word);
        if (pre >= 0) push(Tok.Suffix, word, pre + 1);
        else if (post >= 0) push(Tok.Suffix, word, SUFFIX_NONE + 1 + post);
        else ok = false;
      }
    } else if (c === '~') {
      ok = prev < Tok.CommitHash;
      if (ok) {
        p++;
        const s = p;
        while (p < v.length && /[0-9a-fA-F]/.test(v[p])) p++;
        ok = p > s;
        if (ok) push(Tok.CommitHash, v.slice(s, p));
      }
    } else if (c === '-') {
      ok = prev < Tok.RevisionNo && v[p + 1] === 'r';
      if (ok) {
        p += 2;
        const d = digits();
        ok = d !== '';
        if (ok) push(Tok.RevisionNo, d);
      }
    } else ok = false;
    if (!ok) {
      push(Tok.Invalid, v.slice(p));
      return out;
    }
  }
}

/** Whether apk accepts the string as a package version at all. */
export function apkValid(v: string): boolean {
  return tokenize(v).at(-1)!.kind === Tok.End;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tokenCompare(a: Token, b: Token): number {
  // a '.'-component with a leading zero compares as a string (Gentoo rule), others numerically
  if (a.kind === Tok.Digit && (a.text[0] === '0' || b.text[0] === '0')) return cmpStr(a.text, b.text);
  switch (a.kind) {
    case Tok.Digit:
    case Tok.InitialDigit:
    case Tok.SuffixNo:
    case Tok.RevisionNo:
      return a.num < b.num ? -1 : a.num > b.num ? 1 : 0;
    case Tok.Letter:
      return cmpStr(a.text, b.text);
    case Tok.Suffix:
      return a.suffix - b.suffix;
    default:
      return cmpStr(a.text, b.text);
  }
}

/** apk's ordering of two version strings (invalid strings compare by their valid prefix). */
export function apkCompare(a: string, b: string): number {
  const ta = tokenize(a);
  const tb = tokenize(b);
  let k = 0;
  while (ta[k].kind === tb[k].kind && ta[k].kind < Tok.End) {
    const r = tokenCompare(ta[k], tb[k]);
    if (r !== 0) return r;
    k++;
  }
  const x = ta[k];
  const y = tb[k];
  if (x.kind === y.kind) return 0;
  // one side goes on where the other stopped (or differs in kind): a pre-release suffix makes
  // its side smaller; otherwise the side whose token comes later in the grammar is smaller
  if (x.kind === Tok.Suffix && x.suffix < SUFFIX_NONE) return -1;
  if (y.kind === Tok.Suffix && y.suffix < SUFFIX_NONE) return 1;
  return x.kind > y.kind ? -1 : 1;
}
