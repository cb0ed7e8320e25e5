/** @module tests/unit/bpf/verifier-log — naming the helper an older kernel lacks, from its verifier log. */
import { describe, expect, test } from "bun:test";
import { missingHelper } from "../../../src/bpf/verifier-log.ts";

describe("missingHelper", () => {
  test("an id the kernel does not know at all (5.15 and bpf_loop)", () => {
    const log = ["func#0 @0", "0: R1=ctx() R10=fp0", "; bpf_loop(64, step, &w, 0);", "12: (85) call unknown#181", "invalid func unknown#181", "processed 12 insns"];
    expect(missingHelper(log)).toEqual({ id: 181, name: "bpf_loop", since: "5.17" });
  });
  test("a helper this program type may not call, old and new wording", () => {
    expect(missingHelper(["unknown func bpf_get_attach_cookie#174"])).toEqual({ id: 174, name: "bpf_get_attach_cookie", since: "5.15" });
    expect(missingHelper(["program of this type cannot use helper bpf_ktime_get_boot_ns#125"])).toEqual({ id: 125, name: "bpf_ktime_get_boot_ns", since: "5.8" });
  });
  test("a helper we do not list keeps the kernel's name or its number", () => {
    expect(missingHelper(["unknown func bpf_something_new#250"])).toEqual({ id: 250, name: "bpf_something_new" });
    expect(missingHelper(["invalid func unknown#251"])).toEqual({ id: 251, name: "helper #251" });
  });
  test("other refusals are not about a helper", () => {
    expect(missingHelper(["R1 invalid mem access 'scalar'", "processed 40 insns (limit 1000000)"])).toBeUndefined();
    expect(missingHelper([])).toBeUndefined();
  });
});
