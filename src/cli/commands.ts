/**
 * @module cli/commands — the command table: names, options and the handler each calls.
 * Handlers live in src/cli/<name>.ts, take parsed options and return (or throw).
 */
import type { CAC } from "cac";

export function registerCommands(cli: CAC): void {
  void cli;
}
