/**
 * @module capture/copy — copying a span record out of the ring with no allocation.
 *
 * Why not `dst.set(src.subarray(...))`: the subarray is a heap object per record, and on the live
 * path a record's copies were the last allocations per span (bench/allocations.ts). Four bytes at
 * a time through DataViews (unaligned access is fine on the hosts we run on, and JSC compiles
 * DataView reads and writes inline) costs less than the native copy for records of ~100 bytes:
 * 36–45 vs 72 ns here (bench/RESULTS.md).
 */

/** DataViews of the last two byte arrays copied from or into (the ring; a writer's buffer). */
let viewedA: Uint8Array | undefined;
let viewA: DataView | undefined;
let viewedB: Uint8Array | undefined;
let viewB: DataView | undefined;

function viewOf(bytes: Uint8Array): DataView {
  if (bytes === viewedA) return viewA!;
  if (bytes === viewedB) return viewB!;
  // The older slot goes: a ring stays in one slot, a writer's (re)grown buffer takes the other.
  viewedB = viewedA;
  viewB = viewA;
  viewedA = bytes;
  viewA = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return viewA;
}

/** src[from, from + n) → dst[at, at + n) (the ranges must lie inside both arrays). */
export function copyRecordBytes(src: Uint8Array, from: number, dst: Uint8Array, at: number, n: number): void {
  const s = viewOf(src);
  const d = viewOf(dst);
  let k = 0;
  for (; k + 8 <= n; k += 8) {
    d.setUint32(at + k, s.getUint32(from + k, true), true);
    d.setUint32(at + k + 4, s.getUint32(from + k + 4, true), true);
  }
  for (; k < n; k++) dst[at + k] = src[from + k]!;
}
