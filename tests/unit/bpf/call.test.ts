/** @module tests/unit/bpf/call — errno classification, libbpf warning capture and rodata constant encoding. */
import { describe, expect, test } from "bun:test";
import { TracerError } from "../../../src/errors.ts";
import {
  checkInt,
  errnoError,
  errnoName,
  libbpfMark,
  libbpfWarningsSince,
  PERMISSION_HINT,
  recordLibbpfWarning,
} from "../../../src/bpf/call.ts";
import { encodeConst } from "../../../src/bpf/object.ts";

describe("errno classification", () => {
  test("EPERM and EACCES are permission_denied with the capability hint", () => {
    for (const errno of [1, 13]) {
      const e = errnoError("load BPF object x", errno);
      expect(e.code).toBe("permission_denied");
      expect(e.hint).toBe(PERMISSION_HINT);
    }
    expect(errnoError("load BPF object x", 1).message).toBe("load BPF object x: operation not permitted (EPERM)");
  });

  test("missing kernel features are kernel_unsupported", () => {
    for (const errno of [38, 95, 524]) expect(errnoError("create map", errno).code).toBe("kernel_unsupported");
  });

  test("anything else keeps the caller's code", () => {
    const e = errnoError("attach p at /bin/x+0x10", 22, "attach_failed", ["libbpf said so"]);
    expect(e.code).toBe("attach_failed");
    expect(e.message).toBe("attach p at /bin/x+0x10: invalid argument (EINVAL)");
    expect(e.detail).toEqual(["libbpf said so"]);
    expect(errnoError("x", 12345).message).toBe("x: error 12345");
    expect(errnoName(4008)).toBe("LIBBPF_ERRNO__VERIFY");
  });

  test("checkInt passes non-negative results through and throws on negative errno", () => {
    expect(checkInt(7, "fd")).toBe(7);
    expect(() => checkInt(-2, "open thing")).toThrow(TracerError);
    try {
      checkInt(-2, "open thing", "attach_failed");
    } catch (e) {
      expect((e as TracerError).code).toBe("attach_failed");
      expect((e as TracerError).message).toBe("open thing: no such file or directory (ENOENT)");
    }
  });

  test("libbpf warnings are attached only from the mark on, capped at 64", () => {
    recordLibbpfWarning("old news");
    const mark = libbpfMark();
    recordLibbpfWarning("elf: failed to find symbol");
    expect(libbpfWarningsSince(mark)).toEqual(["elf: failed to find symbol"]);
    for (let i = 0; i < 100; i++) recordLibbpfWarning(`w${i}`);
    const all = libbpfWarningsSince(mark);
    expect(all.length).toBe(64);
    expect(all.at(-1)).toBe("w99");
    expect(libbpfWarningsSince(libbpfMark())).toEqual([]);
  });
});

describe("encodeConst", () => {
  test("little-endian, two's complement, booleans", () => {
    expect([...encodeConst(0x01020304, 4, "c")]).toEqual([4, 3, 2, 1]);
    expect([...encodeConst(-1, 2, "c")]).toEqual([0xff, 0xff]);
    expect([...encodeConst(true, 1, "c")]).toEqual([1]);
    expect([...encodeConst(0xffffffffffffffffn, 8, "c")]).toEqual([255, 255, 255, 255, 255, 255, 255, 255]);
  });

  test("values that do not fit, non-integers and odd sizes are refused", () => {
    expect(() => encodeConst(256, 1, "c")).toThrow("does not fit in 1 bytes");
    expect(() => encodeConst(-129, 1, "c")).toThrow("does not fit");
    expect(() => encodeConst(1.5, 4, "c")).toThrow("is not an integer");
    expect(() => encodeConst(Number.NaN, 4, "c")).toThrow("is not an integer");
    expect(() => encodeConst(1, 3, "c")).toThrow("only 1, 2, 4 and 8-byte");
    expect(() => encodeConst(1n << 64n, 8, "c")).toThrow("does not fit");
  });
});
