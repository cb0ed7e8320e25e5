import { describe, expect, test } from "bun:test";
import { main } from "../../src/main.ts";
import { setLogSink } from "../../src/log.ts";

describe("main", () => {
  test("unknown command is a usage error with exit code 2", async () => {
    const lines: string[] = [];
    setLogSink((l) => lines.push(l));
    const code = await main(["frobnicate"]);
    expect(code).toBe(2);
    expect(lines[0]).toBe("error: unknown command 'frobnicate'");
  });
});
