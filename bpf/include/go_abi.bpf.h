/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_abi.bpf.h — where Go's register-based calling convention (ABIInternal, Go >= 1.17)
 * puts arguments, results and the current goroutine, per architecture.
 *
 * Source: Go's src/cmd/compile/abi-internal.md, "amd64 architecture" and "arm64 architecture":
 *   amd64: integer args/results in RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; g in R14.
 *   arm64: integer args/results in R0..R15 (we use the first nine); g in R28.
 * Results come back in the same registers as arguments, so at a RET the first result is
 * GO_PARAM1. Only integer/pointer-class values are covered; a struct or interface argument
 * occupies consecutive registers (an interface = itab/type word, then data word).
 *
 * The BPF context of a uprobe is the user-space register set; the UAPI `struct pt_regs`
 * (asm/ptrace.h) names x86-64 registers rax.., arm64 uses `struct user_pt_regs` regs[].
 */
#ifndef BEETRACE_GO_ABI_BPF_H
#define BEETRACE_GO_ABI_BPF_H

#include <linux/ptrace.h>

#if defined(__TARGET_ARCH_x86)

#define GO_PARAM1(ctx) ((__u64)(ctx)->rax)
#define GO_PARAM2(ctx) ((__u64)(ctx)->rbx)
#define GO_PARAM3(ctx) ((__u64)(ctx)->rcx)
#define GO_PARAM4(ctx) ((__u64)(ctx)->rdi)
#define GO_PARAM5(ctx) ((__u64)(ctx)->rsi)
#define GO_PARAM6(ctx) ((__u64)(ctx)->r8)
#define GO_PARAM7(ctx) ((__u64)(ctx)->r9)
#define GO_PARAM8(ctx) ((__u64)(ctx)->r10)
#define GO_PARAM9(ctx) ((__u64)(ctx)->r11)
#define GO_GOROUTINE(ctx) ((__u64)(ctx)->r14)

#elif defined(__TARGET_ARCH_arm64)

#define GO_ARM64_REG(ctx, n) ((__u64)((const struct user_pt_regs *)(ctx))->regs[n])
#define GO_PARAM1(ctx) GO_ARM64_REG(ctx, 0)
#define GO_PARAM2(ctx) GO_ARM64_REG(ctx, 1)
#define GO_PARAM3(ctx) GO_ARM64_REG(ctx, 2)
#define GO_PARAM4(ctx) GO_ARM64_REG(ctx, 3)
#define GO_PARAM5(ctx) GO_ARM64_REG(ctx, 4)
#define GO_PARAM6(ctx) GO_ARM64_REG(ctx, 5)
#define GO_PARAM7(ctx) GO_ARM64_REG(ctx, 6)
#define GO_PARAM8(ctx) GO_ARM64_REG(ctx, 7)
#define GO_PARAM9(ctx) GO_ARM64_REG(ctx, 8)
#define GO_GOROUTINE(ctx) GO_ARM64_REG(ctx, 28)

#else
#error "define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

#endif /* BEETRACE_GO_ABI_BPF_H */
