/**
 * @module probes/common/sampling — OTEL_TRACES_SAMPLER as the BPF programs apply it: the
 * `volatile const` pair every object gets from bpf/include/span.bpf.h (bee_sampler,
 * bee_sample_threshold). The root span of a trace is decided in BPF when its trace id is drawn,
 * children inherit the flag (also across processes, through the sampled flag of traceparent),
 * and spans of unsampled traces never reach the ring buffer.
 */
import { ratioThreshold, type SamplerConfig } from "../../config/otel-env.ts";
import { ENUMERATORS as E } from "../nethttp/nethttp.gen.ts";

/** The rodata values for `cfg` (enum bee_sampler in bpf/shared/span.h). */
export function bpfSamplerConsts(cfg: SamplerConfig): { bee_sampler: number; bee_sample_threshold: bigint } {
  const parentBased = cfg.name.startsWith("parentbased_") ? E.BEE_SAMPLER_PARENT_BASED : 0;
  switch (cfg.name) {
    case "always_on":
    case "parentbased_always_on":
      return { bee_sampler: E.BEE_SAMPLER_ALWAYS_ON | parentBased, bee_sample_threshold: 0n };
    case "always_off":
    case "parentbased_always_off":
      return { bee_sampler: E.BEE_SAMPLER_ALWAYS_OFF | parentBased, bee_sample_threshold: 0n };
    case "traceidratio":
    case "parentbased_traceidratio":
      return { bee_sampler: E.BEE_SAMPLER_RATIO | parentBased, bee_sample_threshold: ratioThreshold(cfg.ratio) };
  }
}
