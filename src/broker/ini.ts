// A reader for the subset of Python ConfigParser syntax the original broker config uses:
// `[section]`, `key = value` / `key: value` (first delimiter wins), full-line `;`/`#` comments,
// indented continuation lines, keys folded to lower case, values stripped. Inline comments are
// not stripped (ConfigParser's default), so `port = 53 ; dns` is a bad port list, not 53.

export interface IniError {
  line: number;
  message: string;
}

export type IniSections = Map<string, Map<string, string>>;

export function parseIni(text: string): IniSections | IniError {
  const sections: IniSections = new Map();
  let current: Map<string, string> | null = null;
  let lastKey: string | null = null;
  const lines = text.split(/\r\n|\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const lineNo = i + 1;
    const stripped = raw.trim();
    if (stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')) {
      // ConfigParser keeps blank lines inside multi-line values only when followed by more
      // indented text; values here are single-line, so a blank line ends the value.
      if (stripped === '') lastKey = null;
      continue;
    }
    const indented = /^[ \t]/.test(raw);
    if (indented && current && lastKey !== null) {
      current.set(lastKey, `${current.get(lastKey)}\n${stripped}`);
      continue;
    }
    const section = /^\[([^\]]+)\]$/.exec(stripped);
    if (section) {
      const name = section[1];
      if (sections.has(name)) return { line: lineNo, message: `section [${name}] appears twice` };
      current = new Map();
      sections.set(name, current);
      lastKey = null;
      continue;
    }
    if (!current) return { line: lineNo, message: `"${stripped}" appears before any [section]` };
    const at = delimiterIndex(stripped);
    if (at <= 0) return { line: lineNo, message: `"${stripped}" is not a key = value line` };
    const key = stripped.slice(0, at).trim().toLowerCase();
    const value = stripped.slice(at + 1).trim();
    if (current.has(key)) return { line: lineNo, message: `key "${key}" appears twice in its section` };
    current.set(key, value);
    lastKey = key;
  }
  return sections;
}

function delimiterIndex(line: string): number {
  const eq = line.indexOf('=');
  const colon = line.indexOf(':');
  if (eq < 0) return colon;
  if (colon < 0) return eq;
  return Math.min(eq, colon);
}

export function isIniError(x: IniSections | IniError): x is IniError {
  return !(x instanceof Map);
}
