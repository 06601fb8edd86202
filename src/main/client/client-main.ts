// Client entry point, called by the QuickJS bundle entry (src/main/client/quickjs-main.ts).
import type { Native } from '../../native.js';
import { NetlinkKernel } from '../../netlink/kernel.js';
import type { Loop } from '../../runtime/loop.js';
import { Client } from '../../client/client.js';
import { ClientDriver } from '../../client/driver.js';
import { createLogger } from '../../client/log.js';
import { parseArgs } from '../../client/options.js';

/** args: the command line after the program name. Exits 1 on -h and on bad arguments. */
export function clientMain(args: string[], native: Native, loop: Loop): void {
  const parsed = parseArgs(args);
  if ('exit' in parsed) {
    if (parsed.error) loop.log('error', parsed.text);
    else loop.print(parsed.text.endsWith('\n') ? parsed.text : `${parsed.text}\n`);
    loop.exit(parsed.exit);
  }
  const o = parsed.options;
  const log = createLogger(native, loop, o.foreground);
  const brokers = o.brokers.map((b) => `${b.host}:${b.port}`).join(', ');
  log('info', `starting: tunnel ${o.tunnelId} on ${o.ifname}, uuid ${o.uuid}, brokers ${brokers} (selection: ${o.selection})`);
  const driver = new ClientDriver(new Client(o), native, loop, new NetlinkKernel(native), o, log);
  driver.start();
}
