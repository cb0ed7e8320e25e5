// noop.bpf.c — the floor for the latency benchmark: uprobe programs that do (almost) nothing,
// attached where beetrace attaches (each probed function's entry and every RET), so
// latency.ts can separate the kernel's uprobe cost from the work beetrace's programs do.
// Built by bench/latency.sh:
//   clang -O2 -g -target bpf -I/usr/include/<triplet> -c bench/noop.bpf.c -o .cache/bench/noop.bpf.o
// The only work is one atomic add per hit, so the driver can report hits per request (a
// no-op that cannot be checked could silently be attached nowhere).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 entry_hits = 0;
__u64 return_hits = 0;

SEC("uprobe")
int noop_entry(void *ctx)
{
	__sync_fetch_and_add(&entry_hits, 1);
	return 0;
}

SEC("uprobe")
int noop_return(void *ctx)
{
	__sync_fetch_and_add(&return_hits, 1);
	return 0;
}
