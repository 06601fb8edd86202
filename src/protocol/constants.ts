// Protocol constants and timers, in one place (spec §2, §4).

/** Every control packet starts with 80 73 A7 01: the 0x80 byte sets the L2TP "T" bit and the low
 *  nibble of 0x73 reads as L2TP version 3, so the kernel's L2TP encap hook passes control
 *  messages up to user space on the same socket that carries data. */
export const MAGIC1 = 0x80;
export const MAGIC2 = 0x73a7;
export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 6;
/** Unreliable messages shorter than this are zero-padded (some firewalls drop tiny UDP on 53). */
export const MIN_PACKET_SIZE = 12;

export const enum MessageType {
  INVALID = 0x00,
  COOKIE = 0x01,
  PREPARE = 0x02,
  ERROR = 0x03,
  TUNNEL = 0x04,
  KEEPALIVE = 0x05,
  PMTUD = 0x06,
  PMTUD_ACK = 0x07,
  REL_ACK = 0x08,
  PMTU_NTFY = 0x09,
  USAGE = 0x0a,
  LIMIT = 0x80,
}

/** Reliable messages (bit 7 set) carry a u16 sequence number and must be acknowledged. */
export const RELIABLE_BIT = 0x80;

export const LIMIT_TYPE_BANDWIDTH_DOWN = 0x01;

/** Feature flags (spec §2.7): bit 0 = unique session ids (session id = tunnel id). */
export const FEATURE_UNIQUE_SESSION_ID = 0x00000001;
export const FEATURES_MASK = 0x00000001;

/** Error reason byte = direction nibble | code nibble; the two sides use different tables. */
export const ERROR_FROM_CLIENT = 0x10;
export const enum BrokerErrorCode {
  OTHER_REQUEST = 0x01,
  SHUTDOWN = 0x02,
  TIMEOUT = 0x03,
  FAILURE = 0x04,
  UNDEFINED = 0x05,
}
export const enum ClientErrorCode {
  OTHER_REQUEST = 0x10,
  SHUTDOWN = 0x11,
  TIMEOUT = 0x12,
  FAILURE = 0x13,
}

/** Human text for an error reason byte as received (for logs). */
export function describeErrorReason(reason: number | undefined): string {
  if (reason === undefined) return 'refused (no reason)';
  const fromClient = (reason & 0xf0) === ERROR_FROM_CLIENT;
  const code = reason & 0x0f;
  const broker = ['?', 'other side asked to close', 'broker shutdown', 'broker timeout', 'broker failure', 'undefined'];
  const client = ['peer asked to close', 'client shutdown', 'client timeout', 'client failure'];
  const text = fromClient ? client[code] : broker[code];
  return `${text ?? 'unknown'} (0x${reason.toString(16).padStart(2, '0')})`;
}

/** IPv4 20 + UDP 8: added to a PMTUD_ACK value to get the IP packet size that got through. */
export const IPV4_UDP_OVERHEAD = 28;
/** IPv4 20 + UDP 8 + L2TPv3 12 + Ethernet 14: path MTU minus this is the tunnel MTU. */
export const TUNNEL_OVERHEAD = 54;
export const PMTU_DEFAULT = 1446;
export const MTU_MIN = 1280;
/** IPv6 40 + UDP 8, and IPv6 40 + UDP 8 + L2TPv3 12 + Ethernet 14: the IPv6 underlay's values of
 *  IPV4_UDP_OVERHEAD and TUNNEL_OVERHEAD (src/protocol/mtu.ts picks by family). */
export const IPV6_UDP_OVERHEAD = 48;
export const TUNNEL_OVERHEAD_IPV6 = 74;
/** Every IPv6 link carries 1280-byte packets (RFC 8200 §5): the smallest IPv6 probe, so a
 *  probing round over IPv6 always gets an answer even on a minimum-MTU path. */
export const IPV6_MIN_LINK_MTU = 1280;

/** Client PMTU probe sizes (IP bytes), sent back to back in each round. */
export const clientProbeSizes = [1334, 1400, 1450, 1476, 1492, 1500] as const;
/** Broker PMTU probe sizes (IP bytes), largest first, each sent brokerProbeRepeat times, 1 per s. */
export const brokerProbeSizes = [1500, 1492, 1476, 1450, 1400, 1334] as const;
export const brokerProbeRepeat = 4;
/** The same over an IPv6 underlay, with the IPv6 minimum link MTU added as the smallest size. */
export const clientProbeSizesIpv6 = [IPV6_MIN_LINK_MTU, ...clientProbeSizes] as const;
export const brokerProbeSizesIpv6 = [...brokerProbeSizes, IPV6_MIN_LINK_MTU] as const;

/** Timers, milliseconds. */
export const timers = {
  /** Client keepalive interval (NAT bindings need ≤ ~6 s). */
  clientKeepalive: 5_000,
  /** A client keepalive goes out up to this much before or after its due time (interval after
   *  the previous one) so that it shares a wake-up with a broker datagram or another timer: each
   *  one 4-6 s after the previous (the original client: 5-7 s, integer-second clock), on average
   *  the broker's 5 s once they share wake-ups; the client's own timer fires at +6 s only when
   *  nothing else woke it. */
  clientKeepaliveSlack: 1_000,
  /** Client closes the tunnel after this much control-plane silence. */
  clientLiveness: 60_000,
  /** Handshake retransmit (USAGE/COOKIE/PREPARE). */
  handshakeRetry: 3_000,
  /** Name resolution timeout. */
  resolveTimeout: 3_000,
  /** Selection round: wait this long for brokers to answer. */
  selectionWindow: 10_000,
  /** A selected broker must reach the tunnel state within this. */
  establishTimeout: 15_000,
  /** Client PMTU: first round after this, then doubling up to pmtuReprobeMax. */
  pmtuReprobeFirst: 15_000,
  pmtuReprobeMax: 600_000,
  /** Client PMTU round: resend probes every second, evaluate after 5 s. */
  pmtuProbeResend: 1_000,
  pmtuCollect: 5_000,
  /** A round that suggests a lower path MTU is confirmed by an extra round this long after it. */
  pmtuConfirm: 5_000,
  /** Reliable message retransmit interval and attempts. */
  reliableRetry: 2_000,
  reliableAttempts: 10,
  reliableMaxPending: 30,
  /** Broker keepalive interval and tunnel timeout. */
  brokerKeepalive: 5_000,
  brokerTimeout: 120_000,
  /** Broker PMTU probing: one probe per second; sleep 500–699 s after a completed run. */
  brokerProbeInterval: 1_000,
  brokerReprobeMin: 500_000,
  brokerReprobeJitter: 200_000,
  /** Failed brokers are avoided for this long when others answer. */
  brokenBrokerHold: 3_600_000,
  /** Client reconnect backoff after failures (exponential with ±25 % jitter; docs/client.md
   *  "Backoff" explains the numbers: at most 37.5 s, so one broker's clients are back within a
   *  minute of it answering again). */
  backoffBase: 1_000,
  backoffMax: 30_000,
  /** Hooks are killed after this long. */
  hookTimeout: 30_000,
  /** A broker name with A and AAAA records: the second family is asked this long after the
   *  first unless the first answered (RFC 8305's connection attempt delay; docs/client.md). */
  secondFamilyDelay: 250,
};
