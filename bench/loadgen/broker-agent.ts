// The load generator's readings of a broker, served over HTTP from beside it: the load generator
// runs on another machine (the host, at native speed) and its --broker-agent asks here. A bench
// tool for a test network, not for a production broker: it answers anyone who reaches it and
// can signal the broker. Bounded: it exits by itself after --max-s.
//
//   node build/js/bench/loadgen/broker-agent.js --listen IP:PORT --broker-pid PID --broker-log FILE [--max-s S]
//
//   GET  /sample?counters=0|1   {at, cpu, rssKiB, fds, log}: /proc of PID, and with counters=1
//                               its SIGUSR1 counters from FILE (broker-probe.ts BrokerSample)
//   POST /stop?signal=SIGTERM|SIGKILL&wait=S
//                               signals PID and answers when it is gone or after S s:
//                               {exitAfterS, maxChildren, maxRssKiB} (StopWatch)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { LocalBrokerProbe } from './broker-probe.js';
import { hostPort, OptionError } from './options.js';

export const AGENT_HELP = `Usage: node build/js/bench/loadgen/broker-agent.js --listen IP:PORT --broker-pid PID --broker-log FILE [--max-s S]
Serves the load generator's readings of the broker PID (/proc, its SIGUSR1 counters in FILE) over
HTTP for a load generator elsewhere (loadgen --broker-agent http://IP:PORT). Exits after S s
(default 7200). A bench tool: it answers anyone who reaches it and can signal the broker.
`;

export interface AgentOptions {
  host: string;
  port: number;
  pid: number;
  log: string;
  maxS: number;
}

/** Options, 'help', or an error message naming the option. */
export function parseAgentOptions(argv: string[]): AgentOptions | 'help' | string {
  const o: Partial<AgentOptions> = { maxS: 7200 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '-h' || a === '--help') return 'help';
    if (v === undefined) return `${a} needs a value`;
    i++;
    if (a === '--listen') {
      try {
        const l = hostPort('--listen', v);
        o.host = l.ip;
        o.port = l.port;
      } catch (e) {
        if (!(e instanceof OptionError)) throw e;
        return `--listen: '${v}' is not IP:PORT (${e.message})`;
      }
    } else if (a === '--broker-pid') {
      if (!/^\d+$/.test(v) || Number(v) < 1) return `--broker-pid: '${v}' is not a process id`;
      o.pid = Number(v);
    } else if (a === '--broker-log') o.log = v;
    else if (a === '--max-s') {
      if (!/^\d+$/.test(v) || Number(v) < 1) return `--max-s: '${v}' is not a number of seconds`;
      o.maxS = Number(v);
    } else return `unknown option '${a}' (see --help)`;
  }
  if (o.host === undefined || o.pid === undefined || o.log === undefined) return '--listen, --broker-pid and --broker-log are required';
  return o as AgentOptions;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': status === 200 ? 'application/json' : 'text/plain' });
  res.end(status === 200 ? JSON.stringify(body) : String(body));
}

/** The request handler over a probe (exported for the test, which runs it on loopback). */
export function agentHandler(probe: LocalBrokerProbe) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://agent');
    const reply = (p: Promise<unknown>): void => void p.then((b) => send(res, 200, b), (e) => send(res, 500, e instanceof Error ? e.message : String(e)));
    if (req.method === 'GET' && u.pathname === '/sample') {
      reply(probe.sample(u.searchParams.get('counters') === '1'));
    } else if (req.method === 'POST' && u.pathname === '/stop') {
      const signal = u.searchParams.get('signal');
      const wait = Number(u.searchParams.get('wait'));
      if ((signal !== 'SIGTERM' && signal !== 'SIGKILL') || !Number.isFinite(wait) || wait <= 0 || wait > 3600) {
        send(res, 400, 'stop needs signal=SIGTERM|SIGKILL and wait=1..3600');
        return;
      }
      reply(probe.stop(signal, wait));
    } else send(res, 404, `no ${req.method} ${u.pathname}`);
  };
}

function main(argv: string[]): void {
  const o = parseAgentOptions(argv);
  if (o === 'help') {
    process.stdout.write(AGENT_HELP);
    return;
  }
  if (typeof o === 'string') {
    process.stderr.write(`broker-agent: ${o}\n`);
    process.exit(2);
  }
  const server = createServer(agentHandler(new LocalBrokerProbe(o.pid, o.log)));
  server.on('error', (e) => {
    process.stderr.write(`broker-agent: cannot listen on ${o.host}:${o.port}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(o.port, o.host, () => process.stdout.write(`broker-agent: serving broker pid ${o.pid} on ${o.host}:${o.port}\n`));
  setTimeout(() => {
    process.stdout.write(`broker-agent: ${o.maxS} s up, exiting\n`);
    process.exit(0);
  }, o.maxS * 1000).unref();
  // the timer alone does not keep it; the server does, until the guard ends it
}

if (process.argv[1] && /broker-agent\.js$/.test(process.argv[1])) main(process.argv.slice(2));
