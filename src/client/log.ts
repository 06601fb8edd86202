// Client logging: syslog (ident td-client, facility daemon) and, with -f, stderr via Loop.log.
import type { Native } from '../native.js';
import type { Loop, LogLevel } from '../runtime/loop.js';

export type Logger = (level: LogLevel, message: string) => void;

const PRIORITY: Record<LogLevel, number> = { error: 3, warning: 4, info: 6, debug: 7 };

export function createLogger(native: Native, loop: Loop, toStderr: boolean): Logger {
  return (level, message) => {
    native.syslog(PRIORITY[level], 'td-client', message);
    if (toStderr) loop.log(level, message);
  };
}
