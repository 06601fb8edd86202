// How many tunnels the broker's file descriptor limit leaves room for (logged at start by
// src/main/broker/broker-main.ts after Native.raiseFdLimit). Pure: fed limits and config.
import type { BrokerConfig } from './config.js';
import { DEFAULT_MAX_RUNNING } from './job-runner.js';

/** Descriptors the broker holds besides tunnels, listeners and hook processes: stdio, Node's own
 *  (libuv epoll, eventfds, signal pipe, worker threads), the netlink sockets, the id-range lock,
 *  the control socket and its clients, the metrics listener and its scrapes. */
export const FD_FIXED_RESERVE = 64;
/** Descriptors one running hook or tc process holds in the broker: its output pipe and pidfd. */
export const FD_PER_JOB = 2;

export interface FdBudget {
  /** Descriptors kept back: FD_FIXED_RESERVE + one per listener port + FD_PER_JOB per
   *  `[hooks] max_concurrent`. */
  reserve: number;
  /** Tunnels that fit (each holds one UDP socket); Infinity with an unlimited soft limit. */
  tunnels: number;
}

export function fdBudget(soft: number, cfg: Pick<BrokerConfig, 'ports' | 'maxConcurrentJobs'>): FdBudget {
  const reserve = FD_FIXED_RESERVE + cfg.ports.length + FD_PER_JOB * (cfg.maxConcurrentJobs ?? DEFAULT_MAX_RUNNING);
  return { reserve, tunnels: soft === Infinity ? Infinity : Math.max(0, soft - reserve) };
}

/** The start-up line for raiseFdLimit's answer (limits or -errno): info when broker.max_tunnels
 *  fits, a warning naming what to raise when it does not or the limit could not be raised. */
export function fdBudgetLog(
  r: { soft: number; hard: number } | number, cfg: Pick<BrokerConfig, 'ports' | 'maxConcurrentJobs' | 'maxTunnels'>,
  strerror: (errno: number) => string,
): { level: 'info' | 'warning'; message: string } {
  if (typeof r === 'number') {
    return { level: 'warning', message: `cannot raise the file descriptor limit (RLIMIT_NOFILE): ${strerror(-r)}; keeping the current one` };
  }
  const b = fdBudget(r.soft, cfg);
  const jobs = cfg.maxConcurrentJobs ?? DEFAULT_MAX_RUNNING;
  const limit = r.soft === Infinity ? 'unlimited' : `${r.soft}`;
  const room = b.tunnels === Infinity ? 'any number of' : `${b.tunnels}`;
  const text = `file descriptor limit ${limit}: room for ${room} tunnels (one socket each) after a reserve of ` +
    `${b.reserve} (${FD_FIXED_RESERVE} fixed, ${cfg.ports.length} listeners, ${FD_PER_JOB} × hooks.max_concurrent ${jobs})`;
  if (b.tunnels >= cfg.maxTunnels) return { level: 'info', message: text };
  return {
    level: 'warning',
    message: `${text}; broker.max_tunnels is ${cfg.maxTunnels}, so tunnels beyond ${b.tunnels} will fail to open ` +
      '(raise the hard limit: LimitNOFILE= in the systemd unit, or ulimit -Hn)',
  };
}
