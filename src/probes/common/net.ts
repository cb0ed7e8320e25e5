/** @module probes/common/net — network values as Go prints them, for every probe's attributes (and merge's endpoints). */

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
