// Two brokers on one host with overlapping tunnel-id ranges would wreck each other: the start-up
// clean-up of the second deletes the kernel tunnels of the first. Each broker therefore holds a
// pid file per id range, `<dir>/broker-ids-<first>-<last>.pid` (created with O_EXCL), and refuses
// to start while a live process holds a file whose range overlaps its own. Files of dead
// processes (a crash, SIGKILL) are stale and removed. Node has no flock(), hence pid + kill(0).

export interface LockFs {
  /** Creates the directory (and parents) if missing; throws on failure. */
  mkdirp(dir: string): void;
  /** File names in dir ([] when it does not exist). */
  list(dir: string): string[];
  /** File content, or null when it cannot be read. */
  read(path: string): string | null;
  /** O_CREAT|O_EXCL write; false when the file exists; throws on other errors. */
  createExclusive(path: string, text: string): boolean;
  remove(path: string): void;
  /** Whether pid is a running tunneldigger broker (kill(pid, 0), and its command line). */
  isBroker(pid: number): boolean;
}

export type LockResult = { ok: true; path: string; release: () => void } | { ok: false; message: string };

const NAME = /^broker-ids-(\d+)-(\d+)\.pid$/;

export function lockIdRange(fs: LockFs, dir: string, first: number, last: number, pid: number): LockResult {
  fs.mkdirp(dir);
  const own = `${dir}/broker-ids-${first}-${last}.pid`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const conflict = findConflict(fs, dir, first, last, pid, null);
    if (conflict) return { ok: false, message: conflict };
    if (!fs.createExclusive(own, `${pid}\n`)) continue; // a concurrent start: look again
    // another broker with an overlapping (different) range may have started at the same time
    const late = findConflict(fs, dir, first, last, pid, own);
    if (late) {
      fs.remove(own);
      return { ok: false, message: late };
    }
    let released = false;
    return {
      ok: true, path: own,
      release: () => {
        if (released) return;
        released = true;
        if (holder(fs, own) === pid) fs.remove(own);
      },
    };
  }
  return { ok: false, message: `cannot create ${own}: it keeps reappearing (another broker starting?)` };
}

function holder(fs: LockFs, path: string): number | null {
  const text = fs.read(path);
  const pid = text === null ? NaN : Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** A message about a live broker whose range overlaps [first, last]; removes stale files. */
function findConflict(fs: LockFs, dir: string, first: number, last: number, pid: number, own: string | null): string | null {
  for (const name of fs.list(dir)) {
    const m = NAME.exec(name);
    if (!m) continue;
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (b < first || a > last) continue;
    const path = `${dir}/${name}`;
    const other = holder(fs, path);
    if (path === own) continue; // the file we just created
    if (other !== null && other !== pid && fs.isBroker(other)) {
      return `tunnel ids ${first}-${last} overlap ids ${a}-${b} of the broker running as pid ${other} (${path}); ` +
        'its start-up clean-up would delete that broker\'s tunnels: refusing to start (give each broker on this host ' +
        'its own broker.tunnel_id_base / max_tunnels range)';
    }
    // stale: its process is gone (or the file is unreadable or ours from a reused pid)
    fs.remove(path);
  }
  return null;
}
