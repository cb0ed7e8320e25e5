/**
 * @module probes/registry — the list of probes beetrace knows. Shared code iterates this list
 * and reads manifest properties; it never switches on a probe's id.
 */
import { TracerError } from "../errors.ts";
import type { ProbeManifest } from "./probe.ts";
import { nethttpServer } from "./nethttp/server.ts";
import { nethttpClient } from "./nethttp/client.ts";

export const PROBES: readonly ProbeManifest[] = [nethttpServer, nethttpClient];

/** The probe with this id (SpanStart.probe), or undefined. */
export function probeById(id: string): ProbeManifest | undefined {
  return PROBES.find((p) => p.id === id);
}

/** Which probe decodes records with this tag, for the ring-buffer dispatcher. */
export function probeForRecordType(tag: number): ProbeManifest | undefined {
  return RECORD_OWNERS.get(tag);
}

const RECORD_OWNERS: ReadonlyMap<number, ProbeManifest> = (() => {
  const m = new Map<number, ProbeManifest>();
  for (const p of PROBES) {
    for (const t of p.recordTypes) {
      const prev = m.get(t);
      // Two probes claiming one tag would send records to the wrong decoder.
      if (prev !== undefined) {
        throw new TracerError("internal", `record tag 0x${t.toString(16)} is claimed by probes ${prev.id} and ${p.id}`);
      }
      m.set(t, p);
    }
  }
  return m;
})();

/** Every symbol any probe attaches to, deduplicated (for `inspect`). */
export function probeSymbols(): string[] {
  return [...new Set(PROBES.flatMap((p) => p.uprobes.map((u) => u.symbol)))];
}

/** Every struct field any probe reads, deduplicated (for `inspect` and the offsets tracker). */
export function probeFields(): string[] {
  return [...new Set(PROBES.flatMap((p) => p.fields.map((f) => f.field)))];
}

/** Every symbol whose address some probe writes into a const. */
export function probeAddressSymbols(): string[] {
  return [...new Set(PROBES.flatMap((p) => p.addresses.map((a) => a.symbol)))];
}
