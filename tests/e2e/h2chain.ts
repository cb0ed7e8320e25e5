/**
 * @module tests/e2e/h2chain — the h2chain fixture (tests/fixtures/go/h2chain) started as a
 * three-service chain edge → orders → stock over HTTP/2 (h2 with TLS, or h2c), for the tests of
 * live joins and of `merge` by stream id.
 */
import { startSample, type RunningSample } from "./harness.ts";

/**
 * Starts stock, then orders calling stock, then edge calling orders, all speaking `proto`. Each
 * is pushed onto `started` as soon as it runs, so the caller's cleanup stops what did start.
 */
export async function startH2Chain(bin: string, proto: "h2" | "h2c", started: RunningSample[]): Promise<{ edge: RunningSample; orders: RunningSample; stock: RunningSample }> {
  const scheme = proto === "h2" ? "https" : "http";
  const stock = await startSample(bin, ["-proto", proto]);
  started.push(stock);
  const orders = await startSample(bin, ["-proto", proto, "-next", `${scheme}://127.0.0.1:${stock.port}`, "-next-proto", proto]);
  started.push(orders);
  const edge = await startSample(bin, ["-next", `${scheme}://127.0.0.1:${orders.port}`, "-next-proto", proto]);
  started.push(edge);
  return { edge, orders, stock };
}
