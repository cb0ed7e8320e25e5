/** @module export/create — the OTLP exporter for a configured protocol (http/protobuf, http/json, grpc). */
import type { ExporterOptions, OtlpExporter } from "./exporter.ts";
import { OtlpGrpcExporter } from "./otlp-grpc.ts";
import { OtlpHttpExporter } from "./otlp-http.ts";

export type ExportProtocol = "http/protobuf" | "http/json" | "grpc";

export interface OtlpExporterOptions extends ExporterOptions {
  /** HTTP: the full traces URL. gRPC: http(s)://host:port (config/otel-env.ts resolves both). */
  endpoint: string;
  /** Default http/protobuf */
  protocol?: ExportProtocol;
  /** HTTP headers, or gRPC metadata */
  headers?: Record<string, string>;
}

/** Same batching, retries, spill and accounting whatever the protocol; only the transport differs. */
export function createOtlpExporter(cfg: OtlpExporterOptions): OtlpExporter {
  const { protocol, ...rest } = cfg;
  if (protocol === "grpc") return new OtlpGrpcExporter(rest);
  return new OtlpHttpExporter({ ...rest, protocol: protocol ?? "http/protobuf" });
}
