// SPDX-License-Identifier: Apache-2.0
// The escape program's cases through the other system call ABIs of an x86_64 process:
// i386 socketcall(2), i386 socket(2) + connect(2) through int $0x80, and x32
// (tests/e2e/test_escape.py).
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
#define I386_SOCKETCALL 102
#define I386_SOCKET 359
#define I386_CONNECT 362
#define I386_SYS_SOCKET 1  // socketcall(2) call numbers (linux/net.h)
#define I386_SYS_CONNECT 3
// x32: the x86_64 numbers with bit 30 set (arch/x86/include/uapi/asm/unistd.h).
#define X32_BIT 0x40000000L

// ---- i386 and x32 system calls from this x86_64 process ------------------------------------

#if defined(__x86_64__)
// int $0x80 takes the i386 syscall number in eax and arguments in ebx, ecx, edx (32 bits).
static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c)
                     : "memory", "cc", "r8", "r9", "r10", "r11");
    return ret;
}

// Memory below 4 GiB: i386 syscalls see only the low 32 bits of a pointer.
static void* low_copy(const void* src, size_t n) {
    void* p =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (p == MAP_FAILED) {
        fail("mmap(MAP_32BIT)");
        exit(1);
    }
    memcpy(p, src, n);
    return p;
}

static int after_i386_socket(long fd, const Addr* a, int use_socketcall) {
    if (fd < 0) {
        return fail_err(use_socketcall ? "socketcall(SYS_SOCKET)" : "i386 socket", (int)-fd);
    }
    const void* sa = low_copy(&a->ss, a->len);
    long r;
    if (use_socketcall) {
        const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)sa, a->len};
        r = int80(I386_SOCKETCALL, I386_SYS_CONNECT, (long)(uintptr_t)low_copy(args, sizeof args),
                  0);
    } else {
        r = int80(I386_CONNECT, fd, (long)(uintptr_t)sa, a->len);
    }
    if (r < 0) {
        return fail_err(use_socketcall ? "socketcall(SYS_CONNECT)" : "i386 connect", (int)-r);
    }
    if (write_marker((int)fd) != 0) {
        return 1;
    }
    return sent(use_socketcall ? "i386 socketcall" : "i386 socket+connect");
}

int case_i386_socketcall(const Addr* a) {
    const uint32_t args[3] = {(uint32_t)a->family, SOCK_STREAM, 0};
    const long fd =
        int80(I386_SOCKETCALL, I386_SYS_SOCKET, (long)(uintptr_t)low_copy(args, sizeof args), 0);
    return after_i386_socket(fd, a, 1);
}

int case_i386_connect(const Addr* a) {
    const long fd = int80(I386_SOCKET, a->family, SOCK_STREAM, 0);
    return after_i386_socket(fd, a, 0);
}

int case_x32(const Addr* a) {
    const long fd = syscall(X32_BIT | SYS_socket, a->family, SOCK_STREAM, 0);
    if (fd < 0) {
        return fail("x32 socket");
    }
    const void* sa = low_copy(&a->ss, a->len);
    if (syscall(X32_BIT | SYS_connect, fd, sa, a->len) < 0) {
        return fail("x32 connect");
    }
    if (write_marker((int)fd) != 0) {
        return 1;
    }
    return sent("x32 socket+connect");
}
#else
int case_i386_socketcall(const Addr* a) {
    (void)a;
    return fail_err("i386 socketcall: x86_64 only", ENOSYS);
}
int case_i386_connect(const Addr* a) {
    (void)a;
    return fail_err("i386 connect: x86_64 only", ENOSYS);
}
int case_x32(const Addr* a) {
    (void)a;
    return fail_err("x32: x86_64 only", ENOSYS);
}
#endif
