// Downstream bandwidth limit for a session interface (LIMIT BANDWIDTH_DOWN, spec §6.2): an HTB
// root with one class at the requested rate, fq_codel under it. The first command (removing a
// previous root qdisc) is expected to fail on a fresh interface.

export interface TcCommand {
  args: string[];
  ignoreFailure: boolean;
}

export function bandwidthLimitCommands(ifname: string, kbps: number): TcCommand[] {
  const rate = `${kbps}kbit`;
  return [
    { args: ['qdisc', 'del', 'dev', ifname, 'root'], ignoreFailure: true },
    { args: ['qdisc', 'add', 'dev', ifname, 'root', 'handle', '1:', 'htb', 'default', '1'], ignoreFailure: false },
    {
      args: ['class', 'add', 'dev', ifname, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', rate, 'ceil', rate],
      ignoreFailure: false,
    },
    { args: ['qdisc', 'add', 'dev', ifname, 'parent', '1:1', 'handle', '10:', 'fq_codel'], ignoreFailure: false },
  ];
}
