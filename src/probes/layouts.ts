/**
 * @module probes/layouts — record layouts of every BPF object, from the bindings generated from
 * its BTF (src/probes/<lib>/<lib>.gen.ts, written by build/btf-codegen.ts). A new object adds
 * one line to GENERATED.
 */
import { TracerError } from "../errors.ts";
import type { RecordLayout } from "./record.ts";
import * as nethttp from "./nethttp/nethttp.gen.ts";
import * as grpc from "./grpc/grpc.gen.ts";
import * as kafka from "./kafka/kafka.gen.ts";
import * as databasesql from "./databasesql/databasesql.gen.ts";
import * as otelapi from "./otelapi/otelapi.gen.ts";
import * as http3 from "./http3/http3.gen.ts";

interface MemberGen {
  readonly offset: number;
  readonly size: number;
  readonly struct?: string;
}
interface GeneratedBindings {
  readonly STRUCTS: Readonly<Record<string, { readonly size: number; readonly members: Readonly<Record<string, MemberGen>> }>>;
}

const GENERATED: Readonly<Record<string, GeneratedBindings>> = { nethttp, grpc, kafka, databasesql, otelapi, http3 };

/**
 * The RecordLayout of struct `struct` in object `object`: nested structs (the rec_span header)
 * flattened by member name, `fixed` = offset of the flexible `strings` member, strings = the
 * `<name>_len` members in declaration order (the order BPF packs them in).
 */
export function recordLayoutOf(object: string, struct: string): RecordLayout {
  const gen = GENERATED[object];
  const s = gen?.STRUCTS[struct];
  if (!gen || !s) throw new TracerError("internal", `no generated layout for ${struct} in ${object}.bpf.o`);
  const fields: Record<string, readonly [number, number]> = {};
  const strings: string[] = [];
  let fixed = -1;
  const walk = (members: Readonly<Record<string, MemberGen>>, base: number): void => {
    for (const [name, m] of Object.entries(members)) {
      if (m.struct !== undefined) {
        const inner = gen.STRUCTS[m.struct];
        if (!inner) throw new TracerError("internal", `${struct}.${name}: no generated layout for ${m.struct}`);
        walk(inner.members, base + m.offset);
        continue;
      }
      if (name === "strings") fixed = base + m.offset;
      else if (!name.startsWith("_")) fields[name] = [base + m.offset, m.size];
      if (name.endsWith("_len")) strings.push(name.slice(0, -"_len".length));
    }
  };
  walk(s.members, 0);
  if (fixed < 0) throw new TracerError("internal", `${struct} has no flexible 'strings' member`);
  return { struct, fixed, fields, strings };
}
