/**
 * @module probes/registry — the list of probes beetrace knows. Shared code iterates this list
 * and reads manifest properties; it never switches on a probe's id.
 */
import { TracerError } from "../errors.ts";
import type { ProbeManifest } from "./probe.ts";
import { nethttpServer } from "./nethttp/server.ts";
import { nethttpClient } from "./nethttp/client.ts";
import { grpcServer } from "./grpc/server.ts";
import { grpcClient } from "./grpc/client.ts";
import { kafkaProducer } from "./kafka/producer.ts";
import { kafkaConsumer } from "./kafka/consumer.ts";
import { databaseSql } from "./databasesql/manifest.ts";
import { otelApi } from "./otelapi/manifest.ts";
import { http3Server, http3Client } from "./http3/index.ts";

export const PROBES: readonly ProbeManifest[] = [nethttpServer, nethttpClient, grpcServer, grpcClient, kafkaProducer, kafkaConsumer, databaseSql, otelApi, http3Server, http3Client];

// Two probes claiming one record tag would send records to the wrong decoder.
{
  const seen = new Map<number, string>();
  for (const p of PROBES) {
    const prev = seen.get(p.record.type);
    if (prev !== undefined) throw new TracerError("internal", `record tag 0x${p.record.type.toString(16)} is claimed by probes ${prev} and ${p.id}`);
    seen.set(p.record.type, p.id);
  }
}

/** Every symbol any probe attaches to (probed functions, end markers, extra sites), deduplicated (for `inspect`). */
export function probeSymbols(): string[] {
  return [
    ...new Set(
      PROBES.flatMap((p) =>
        p.uprobes.flatMap((u) => [u.symbol, ...(u.endMarkers ?? []).flatMap((m) => m.choices.flatMap((c) => c.symbols)), ...(u.extraSites ?? []).flatMap((x) => x.symbols)]),
      ),
    ),
  ];
}

/** Every struct field any probe reads, deduplicated (for `inspect` and the offsets tracker). */
export function probeFields(): string[] {
  return [...new Set(PROBES.flatMap((p) => p.fields.map((f) => f.field)))];
}
