/** @module probes/http3 — the HTTP/3 (github.com/quic-go/quic-go/http3) server and client probes. */
export { http3Server } from "./server.ts";
export { http3Client } from "./client.ts";
