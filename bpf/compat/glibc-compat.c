/*
 * glibc symbol-version floor for the embedded libbpf bundle (libbpf + libelf + zlib in one .so).
 *
 * Why: the bundle is dlopen'ed by the Bun runtime, which itself needs only GLIBC_2.17. Linked
 * against Debian 12's glibc 2.36, three calls bind to newer symbol versions and would make the
 * bundle refuse to load on RHEL 8 (glibc 2.28) or Ubuntu 20.04 (2.31):
 *   fstat    -> GLIBC_2.33 (glibc 2.33 turned fstat into a real symbol; before it was an inline
 *               wrapper around __fxstat)            used by libelf (elf_begin.c, elf_update.c)
 *   fcntl64  -> GLIBC_2.28 (the LFS alias added in 2.28)          used by libbpf
 *   fmemopen -> GLIBC_2.22 (the POSIX-conforming rewrite in 2.22) used by libbpf (kconfig parsing)
 * build-libbpf.sh renames those references in the static archives (objcopy --redefine-sym) to
 * the compat_* functions below, which call the x86-64 base versions (GLIBC_2.2.5) instead.
 * libbpf only reads a kconfig string through fmemopen(..., "r"), where the pre-2.22 fmemopen
 * behaves the same.
 */
#if !defined(__x86_64__)
#error "glibc-compat.c pins x86-64 symbol versions (GLIBC_2.2.5); add the base versions for this arch"
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* _STAT_VER_LINUX is 1 on x86-64: glibc sysdeps/unix/sysv/linux/x86/xstatver.h */
#define COMPAT_STAT_VER_LINUX 1

extern int compat_fxstat_base(int ver, int fd, struct stat *st);
extern int compat_fcntl_base(int fd, int cmd, ...);
extern FILE *compat_fmemopen_base(void *buf, size_t size, const char *mode);

__asm__(".symver compat_fxstat_base,__fxstat@GLIBC_2.2.5");
__asm__(".symver compat_fcntl_base,fcntl@GLIBC_2.2.5");
__asm__(".symver compat_fmemopen_base,fmemopen@GLIBC_2.2.5");

int compat_fstat(int fd, struct stat *st) {
	return compat_fxstat_base(COMPAT_STAT_VER_LINUX, fd, st);
}

/* Every fcntl command takes at most one argument, an int or a pointer; glibc's own fcntl
 * forwards it the same way (as one pointer-sized va_arg). */
int compat_fcntl64(int fd, int cmd, ...) {
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return compat_fcntl_base(fd, cmd, arg);
}

FILE *compat_fmemopen(void *buf, size_t size, const char *mode) {
	return compat_fmemopen_base(buf, size, mode);
}
