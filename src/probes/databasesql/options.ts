/**
 * @module probes/databasesql/options — `--db-statement=off|sanitized|raw`: how db.query.text is
 * shown. The CLI sets it before planning; the probe's `flags()` hands it to BPF, which marks each
 * record with the mode it was traced under, so a capture file decodes the same way later.
 */
import { TracerError } from "../../errors.ts";

export const STATEMENT_MODES = ["off", "sanitized", "raw"] as const;
export type StatementMode = (typeof STATEMENT_MODES)[number];

let mode: StatementMode = "sanitized";

/** The mode a trace session uses (default sanitized: literals replaced by `?`). */
export function statementMode(): StatementMode {
  return mode;
}

/** Parses `--db-statement`'s value (undefined = the default). */
export function parseStatementMode(v: string | undefined): StatementMode {
  if (v === undefined) return "sanitized";
  if ((STATEMENT_MODES as readonly string[]).includes(v)) return v as StatementMode;
  throw new TracerError("usage", `--db-statement: "${v}" is not a mode`, { hint: "use --db-statement=off, sanitized (default) or raw" });
}

export function setStatementMode(m: StatementMode): void {
  mode = m;
}
