/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_errors.bpf.h — the cause of a Go network error, classified in BPF (the error value is
 * gone by the time user space could look): the dynamic type of an `error` interface is told
 * apart by its descriptor's name offset (internal/abi.Type.Str), which user space looks up in
 * the binary's type data for each type below (src/binary/go-typenames.ts; the same in every
 * process, PIE or not). -1 = the binary has no such type.
 *
 * Walked: *net.OpError{Err} → *os.SyscallError{Err} → syscall.Errno, *net.DNSError,
 * *poll.DeadlineExceededError, context.deadlineExceededError and
 * *tls.CertificateVerificationError, at most three levels.
 */
#ifndef BEETRACE_GO_ERRORS_BPF_H
#define BEETRACE_GO_ERRORS_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "go_types.bpf.h"

/* internal/abi.Type.Str (a NameOff, int32) on 64-bit: Size_, PtrBytes, Hash, TFlag, Align_,
 * FieldAlign_, Kind_, Equal, GCData, then Str (runtime/type.go _type.str before 1.21). */
#define GO_TYPE_STR_OFF 40

/* Causes (bpf/shared/span.h enum go_err_cause). */
volatile const __s32 nameoff_net_op_error = -1;         /* *net.OpError */
volatile const __s32 nameoff_os_syscall_error = -1;     /* *os.SyscallError */
volatile const __s32 nameoff_syscall_errno = -1;        /* syscall.Errno */
volatile const __s32 nameoff_net_dns_error = -1;        /* *net.DNSError */
volatile const __s32 nameoff_poll_deadline = -1;        /* *internal/poll.DeadlineExceededError */
volatile const __s32 nameoff_context_deadline = -1;     /* context.deadlineExceededError */
volatile const __s32 nameoff_tls_verification = -1;     /* *crypto/tls.CertificateVerificationError */
volatile const __u32 op_error_err_off = GO_OFF_UNSET;     /* net.OpError.Err */
volatile const __u32 syscall_error_err_off = GO_OFF_UNSET; /* os.SyscallError.Err */

/* The name offset of an error's dynamic type; -2 when it cannot be read. */
static __always_inline __s32 go_error_type_nameoff(__u64 tab)
{
	int err = 0;
	__u64 type = go_read_u64(tab + GO_ITAB_TYPE_OFF, &err);
	__s32 off = -2;
	if (err || type == 0 || bpf_probe_read_user(&off, sizeof(off), (const void *)(type + GO_TYPE_STR_OFF)) != 0)
		return -2;
	return off;
}

/* Classifies the error {tab, data}; *errno gets a syscall.Errno's value when one is found. */
static __always_inline __u8 go_error_cause(__u64 tab, __u64 data, __u16 *errno)
{
	struct go_iface e = { .tab = tab, .data = data };
	__u8 cause = GO_ERR_OTHER;
	for (int level = 0; level < 3; level++) {
		if (e.tab == 0)
			break;
		__s32 t = go_error_type_nameoff(e.tab);
		if (t < 0)
			break;
		if (t == nameoff_poll_deadline || t == nameoff_context_deadline)
			return GO_ERR_TIMEOUT;
		if (t == nameoff_net_dns_error)
			return GO_ERR_DNS;
		if (t == nameoff_tls_verification)
			return GO_ERR_TLS;
		if (t == nameoff_syscall_errno) {
			/* A non-pointer value in an interface is boxed: data points at the uintptr. */
			__u64 v = 0;
			if (bpf_probe_read_user(&v, sizeof(v), (const void *)e.data) != 0)
				break;
			*errno = (__u16)v;
			return GO_ERR_ERRNO;
		}
		__u32 next = GO_OFF_UNSET;
		if (t == nameoff_net_op_error)
			next = op_error_err_off;
		else if (t == nameoff_os_syscall_error)
			next = syscall_error_err_off;
		if (next == GO_OFF_UNSET || e.data == 0)
			break;
		if (bpf_probe_read_user(&e, sizeof(e), (const void *)(e.data + next)) != 0)
			break;
	}
	return cause;
}

#endif /* BEETRACE_GO_ERRORS_BPF_H */
