/**
 * @module tests/unit/capture/resource — issue 15 item 7: one session, one resource. The tracer
 * builds the resource once (targetResource), stores it in the capture header and streams with
 * exactly that (src/cli/trace.ts openSinks: `resource: header.resource`); convert and export
 * of the capture read it back from the header. Older files without it get the same keys.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { targetResource } from "../../../src/config/otel-env.ts";
import { resourceAttributes } from "../../../src/export/otlp.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { BEETRACE_VERSION } from "../../../src/version.ts";
import { T0, sampleHeader, sampleSpans, tempDir } from "./fixture.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("one resource per session", () => {
  const host = { name: "web-1", arch: "x64", kernel: "6.1.0-18-amd64" };
  const env = new Map([["OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging"]]);

  test("live resource = header resource = what convert sends; it has both telemetry.distro.* and os.version", async () => {
    const live = targetResource(4242, "/srv/shop/server", env, { goVersion: "go1.22.3", host });
    expect(live).toMatchObject({ "telemetry.distro.name": "beetrace", "telemetry.distro.version": BEETRACE_VERSION, "os.version": "6.1.0-18-amd64", "os.type": "linux" });
    const h = { ...sampleHeader(), tracer: { name: "beetrace", version: BEETRACE_VERSION }, resource: live };
    const p = path.join(dir, "res.cbor");
    const w = CaptureWriter.open(p, h, { flushIntervalMs: 0 });
    w.span(sampleSpans()[0]!);
    w.close("duration", T0, zeroLosses());
    const back = readCaptureFile(p).header;
    expect(resourceAttributes(back)).toEqual(live);
    let out = "";
    await convertCommand(p, {}, async (s) => {
      out += s;
    });
    const attrs = Object.fromEntries(
      (JSON.parse(out.split("\n")[0]!) as { resourceSpans: { resource: { attributes: { key: string; value: Record<string, unknown> }[] } }[] }).resourceSpans[0]!.resource.attributes.map((a) => [
        a.key,
        Object.values(a.value)[0],
      ]),
    );
    expect(Object.keys(attrs).sort()).toEqual(Object.keys(live).sort());
    expect(attrs["os.version"]).toBe("6.1.0-18-amd64");
    expect(attrs["telemetry.distro.name"]).toBe("beetrace");
  });

  test("a header without a stored resource is rebuilt by the same builders: same attributes as live", () => {
    const live = targetResource(4242, "/srv/shop/server", new Map(), { goVersion: "go1.22.3", host });
    const h = sampleHeader();
    h.tracer = { name: "beetrace", version: BEETRACE_VERSION };
    h.host = { name: host.name, arch: host.arch, kernel: host.kernel };
    h.target.serviceName = String(live["service.name"]);
    expect(resourceAttributes(h)).toEqual(live);
  });
});
