/**
 * @module bpf/handles — registry of open native handles (BPF objects, links, ring-buffer
 * mappings, fds) so tests and `doctor` can prove that nothing survives its owner.
 *
 * Every owner registers when it acquires a native resource and unregisters when it releases it;
 * `openHandleCount()` is 0 once everything has been disposed.
 */

const open = new Map<number, string>();
let nextId = 1;

/** Record a newly acquired native resource; returns the id to pass to `releaseHandle`. */
export function trackHandle(description: string): number {
  const id = nextId++;
  open.set(id, description);
  return id;
}

/** Forget a resource that has been released. Releasing twice is harmless. */
export function releaseHandle(id: number): void {
  open.delete(id);
}

/** How many native resources are currently open in this process. */
export function openHandleCount(): number {
  return open.size;
}

/** What is still open, oldest first, for leak reports ("bpf object ring_test", "uprobe link ..."). */
export function openHandles(): string[] {
  return [...open.values()];
}
