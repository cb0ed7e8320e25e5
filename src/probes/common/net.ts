/** @module probes/common/net — network values as Go prints them, for every probe's attributes (and merge's endpoints). */
import type { RecordReader } from "../record.ts";

/** net.IP as Go's IP.String prints it: IPv4 (also IPv4-mapped IPv6) dotted, IPv6 per RFC 5952. */
export function formatIp(b: Uint8Array): string | undefined {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length !== 16) return undefined;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return Array.from(b.subarray(12)).join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  // The longest run of two or more zero words becomes "::" (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/** The text of a record's address field `bytes` (16 bytes) holding `size` (4 or 16) bytes of address; undefined for another size. */
export function ipField(r: RecordReader, size: string, bytes: string): string | undefined {
  const n = r.u8(size);
  const at = r.offsetOf(bytes, 16);
  return at < 0 ? undefined : ipTextAt(r.bytes, at, n);
}

/** Dotted IPv4 text per address (as a u32, first octet highest), made once. */
const IPV4_TEXT = new Map<number, string>();
const IPV4_TEXT_MAX = 4096;

/**
 * The address in bytes[at, at + n) as text, n = 4 or 16 (formatIp's text); undefined for another
 * size. IPv4 and IPv4-mapped IPv6 addresses (a client's local address, span after span) are made
 * once each.
 */
export function ipTextAt(bytes: Uint8Array, at: number, n: number): string | undefined {
  let v4 = -1;
  if (n === 4) v4 = at;
  else if (n === 16) {
    let mapped = bytes[at + 10] === 0xff && bytes[at + 11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) mapped = bytes[at + i] === 0;
    if (mapped) v4 = at + 12;
  } else return undefined;
  if (v4 < 0) return formatIp(bytes.slice(at, at + n));
  const key = ((bytes[v4]! << 24) | (bytes[v4 + 1]! << 16) | (bytes[v4 + 2]! << 8) | bytes[v4 + 3]!) >>> 0;
  let text = IPV4_TEXT.get(key);
  if (text === undefined) {
    text = `${bytes[v4]}.${bytes[v4 + 1]}.${bytes[v4 + 2]}.${bytes[v4 + 3]}`;
    if (IPV4_TEXT.size >= IPV4_TEXT_MAX) IPV4_TEXT.clear();
    IPV4_TEXT.set(key, text);
  }
  return text;
}
