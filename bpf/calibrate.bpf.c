// SPDX-License-Identifier: Apache-2.0
/*
 * calibrate.bpf.c — the smallest real uprobe, for `beetrace doctor`'s end-to-end check.
 *
 * src/bpf/features.ts calibrateUprobe() attaches calibrate_hit to a libc function in
 * beetrace's own process (pid-filtered by the kernel through the perf event), calls that
 * function N times and reads calibrate_hits from .bss. Seeing N hits proves the whole path a
 * trace needs: load through the verifier, uprobe attach, the probe firing, and user space
 * reading BPF memory. It reads no target memory and emits no records on purpose, so a failure
 * here is about the kernel or privileges, never about a Go binary.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* .bss: user space reads it through the object's mmapped .bss map (BpfObject.readBss). */
__u64 calibrate_hits = 0;

SEC("uprobe")
int calibrate_hit(void *ctx)
{
	__sync_fetch_and_add(&calibrate_hits, 1);
	return 0;
}
