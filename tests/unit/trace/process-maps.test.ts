/**
 * @module tests/unit/trace/process-maps.test — the registry of maps shared by every session of
 * one beetrace (bee_conn_spans): it keeps its own duplicate of the fd it is handed, so the map
 * outlives the session that made it; the first one wins; disposing closes what it kept.
 * A plain file stands in for the BPF map (dup works on any fd; no root, no kernel BPF).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROCESS_MAPS, ProcessMaps } from "../../../src/trace/process-maps.ts";

const dir = mkdtempSync(join(tmpdir(), "beetrace-process-maps-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ProcessMaps", () => {
  test("shares the connection map only", () => {
    expect(PROCESS_MAPS).toEqual(["bee_conn_spans"]);
    expect(ProcessMaps.shares("bee_conn_spans")).toBe(true);
    expect(ProcessMaps.shares("events")).toBe(false);
    expect(ProcessMaps.shares("bee_goroutine_spans")).toBe(false);
  });

  test("keeps its own fd: still open after the session's is closed; the first adopted wins; dispose closes it", () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    writeFileSync(a, "a");
    writeFileSync(b, "b");
    const maps = new ProcessMaps();
    expect(maps.get("bee_conn_spans")).toBeUndefined();
    const first = openSync(a, "r");
    maps.adopt("bee_conn_spans", first);
    const kept = maps.get("bee_conn_spans")!;
    expect(kept).not.toBe(first);
    closeSync(first); // the session that made the map ends
    const again = openSync(a, "r");
    expect(fstatSync(kept).ino).toBe(fstatSync(again).ino);
    closeSync(again);
    const second = openSync(b, "r");
    maps.adopt("bee_conn_spans", second);
    expect(maps.get("bee_conn_spans")).toBe(kept);
    closeSync(second);
    maps[Symbol.dispose]();
    expect(maps.get("bee_conn_spans")).toBeUndefined();
    maps.adopt("bee_conn_spans", kept); // after dispose: ignored, nothing leaks
    expect(maps.get("bee_conn_spans")).toBeUndefined();
  });
});
