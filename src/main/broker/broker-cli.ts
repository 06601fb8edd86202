// Command line of tunneldigger-broker (bin/tunneldigger-broker runs cli()):
//   tunneldigger-broker <config-file>            run the broker (broker-main.ts)
//   tunneldigger-broker --version
//   tunneldigger-broker --check-config <file>    exit 0 when the file is valid, 1 naming the first bad key
//   tunneldigger-broker ctl [-s socket | -c config] <command> [args]   talk to a running broker
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { VERSION } from '../../version.js';
import { controlSocketPath } from '../../broker/control.js';

export const CLI_USAGE = `Usage: tunneldigger-broker <config-file>
       tunneldigger-broker --check-config <config-file>
       tunneldigger-broker --version
       tunneldigger-broker ctl [-c config-file | -s socket] <command> [--json]

L2TPv3 tunnel broker, wire-compatible with Tunneldigger clients. The config file uses the
original l2tp_broker.cfg format (sections [broker], [log], [hooks]; optional [control] and
[metrics]).
Signals: SIGTERM/SIGINT close all tunnels (clients get ERROR 0x02, hooks run) and exit;
SIGHUP re-reads the config file; SIGUSR1 logs the counters and a table of the tunnels.

ctl talks to a running broker over its control socket: [control] socket, by default
/run/tunneldigger-broker/<config file name without .cfg>.sock; -c names the config (default
/etc/tunneldigger/broker.cfg), -s the socket. Exit codes: 0 done, 1 refused by the broker,
2 bad usage, 3 no broker on the socket. Commands:
  status                 summary: tunnels, limits, drain state, counters
  tunnels [--json]       one row per tunnel
  drain                  stop admitting new tunnels (usage 0xFFFF, PREPARE refused); tunnels stay
  undrain                admit again
  close <tunnel-id|uuid> close one tunnel (the client gets ERROR, hooks run)
  reload                 re-read the config file (as SIGHUP)`;

export async function cli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-V') {
    process.stdout.write(`tunneldigger-broker ${VERSION}\n`);
    return 0;
  }
  if (first === '--help' || first === '-h') {
    process.stdout.write(`${CLI_USAGE}\n`);
    return 0;
  }
  if (first === '--check-config') {
    if (rest.length !== 1) {
      process.stderr.write(`tunneldigger-broker: --check-config needs exactly one file\n${CLI_USAGE}\n`);
      return 2;
    }
    return checkConfig(rest[0]);
  }
  if (first === 'ctl') {
    const { ctl } = await import('./control-client.js');
    return ctl(rest);
  }
  if (argv.length !== 1 || first.startsWith('-')) {
    process.stderr.write(`${CLI_USAGE}\n`);
    return 2;
  }
  const { main } = await import('./broker-main.js');
  return main(argv);
}

function checkConfig(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    process.stderr.write(`tunneldigger-broker: cannot read config file ${path}: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const cfg = parseConfig(text);
    process.stdout.write(`${path}: OK (ports ${cfg.ports.join(',')} on ${cfg.address}, ` +
      `control socket ${controlSocketPath(cfg, path)})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${path}: ${e.message}\n`);
    return 1;
  }
}
