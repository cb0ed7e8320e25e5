// SPDX-License-Identifier: Apache-2.0
/*
 * jit-dump — the JIT images of loaded BPF programs, for bench/bpf-profile.sh (bpftool 7.1 built
 * without libbfd cannot print them). For every loaded program whose name starts with PREFIX:
 * writes OUTDIR/NAME.bin (the image, every function in order) and OUTDIR/NAME.ksyms (one line
 * per function: its kernel address in hex, its length in bytes), and prints "NAME verified_insns".
 *
 *   cc -O2 -o jit-dump bench/jit-dump.c && ./jit-dump PREFIX OUTDIR     (root)
 *
 * Kernel interface: BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD with
 * jited_prog_insns, jited_ksyms and jited_func_lens (include/uapi/linux/bpf.h).
 */
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr *a) { return (int)syscall(__NR_bpf, cmd, a, sizeof(*a)); }

static int info_of(int fd, struct bpf_prog_info *info)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(*info);
	a.info.info = (unsigned long)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
}

static void dump(int fd, const char *name, const char *dir)
{
	struct bpf_prog_info info;
	memset(&info, 0, sizeof(info));
	if (info_of(fd, &info) != 0)
		return;
	__u32 len = info.jited_prog_len, nsyms = info.nr_jited_ksyms, nlens = info.nr_jited_func_lens;
	__u32 verified = info.verified_insns;
	unsigned char *img = calloc(len ? len : 1, 1);
	unsigned long long *syms = calloc(nsyms ? nsyms : 1, sizeof(*syms));
	__u32 *lens = calloc(nlens ? nlens : 1, sizeof(*lens));
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = len;
	info.jited_prog_insns = (unsigned long)img;
	info.nr_jited_ksyms = nsyms;
	info.jited_ksyms = (unsigned long)syms;
	info.nr_jited_func_lens = nlens;
	info.jited_func_lens = (unsigned long)lens;
	if (info_of(fd, &info) == 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(img, 1, len, f);
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s.ksyms", dir, name);
		f = fopen(path, "w");
		if (f) {
			for (__u32 i = 0; i < nsyms; i++)
				fprintf(f, "%llx %u\n", syms[i], i < nlens ? lens[i] : 0);
			fclose(f);
		}
		printf("%s %u\n", name, verified);
	}
	free(img);
	free(syms);
	free(lens);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: jit-dump PREFIX OUTDIR\n");
		return 2;
	}
	__u32 id = 0;
	for (;;) {
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &a) != 0)
			break;
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.prog_id = id;
		int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd < 0)
			continue;
		struct bpf_prog_info info;
		memset(&info, 0, sizeof(info));
		/* The kernel keeps BPF_OBJ_NAME_LEN - 1 = 15 characters of a name. */
		if (info_of(fd, &info) == 0 && strncmp(info.name, argv[1], strlen(argv[1])) == 0) {
			char name[32];
			snprintf(name, sizeof(name), "%s.%u", info.name, id);
			dump(fd, name, argv[2]);
		}
		close(fd);
	}
	return 0;
}
