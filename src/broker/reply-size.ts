// Answers to datagrams whose source is not authenticated (anything but a PREPARE with a valid
// cookie) must never be larger than the datagram itself, or a spoofed source turns the broker
// into an amplifier. Our messages are padded to 12 bytes (spec §2.2); such a reply is shortened
// to the request's size, down to its unpadded length, and dropped below that.
import { HEADER_SIZE } from '../protocol/constants.js';

/** `reply` cut to at most `requestLength` bytes (only padding is cut), or null when even the
 *  unpadded message is larger than the request. */
export function fitReply(reply: Uint8Array, requestLength: number): Uint8Array | null {
  if (reply.length <= requestLength) return reply;
  const unpadded = HEADER_SIZE + reply[5];
  if (unpadded > requestLength) return null;
  return reply.subarray(0, requestLength);
}
