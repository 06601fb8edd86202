// SIGHUP until a real reload exists: the default action of SIGHUP would kill the broker
// without telling its clients or running a hook. Instead the config file is read again and
// only log.verbosity is applied; everything else needs a restart, and the log says so.
import type { LogLevel } from '../runtime/loop.js';
import { ConfigError, parseConfig } from './config.js';

export function sighupReloadLogLevel(
  path: string,
  readText: (path: string) => string,
  setLevel: (level: LogLevel) => void,
  log: (level: LogLevel, message: string) => void,
): void {
  let level: LogLevel;
  try {
    level = parseConfig(readText(path)).verbosity;
  } catch (e) {
    const why = e instanceof ConfigError ? e.message : `cannot read ${path}: ${(e as Error).message}`;
    log('error', `SIGHUP: ${why}; nothing changed, the broker goes on with the configuration it started with`);
    return;
  }
  setLevel(level);
  log('info', `SIGHUP: log level is now ${level} (log.verbosity of ${path}); reloading anything else is not ` +
    'supported yet, other changes need a restart');
}
