// SPDX-License-Identifier: Apache-2.0
// The escape program's cases through what is inherited from outside the jail: the user's
// terminal (TIOCSTI), sockets, and an io_uring whose SQPOLL thread runs outside
// (tests/e2e/test_escape_process.py).
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "escape.h"

// ---- the terminal --------------------------------------------------------------------------

// tiocsti TEXT: pushes TEXT and a newline into the input of our terminal (stdin, else
// /dev/tty), where the user's shell reads it once landjail has exited.
int case_tiocsti(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape tiocsti TEXT\n");
        return 2;
    }
    int fd = STDIN_FILENO;
    if (!isatty(fd) && (fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0) {
        return fail("open(/dev/tty)");
    }
    const size_t n = strlen(argv[2]);
    for (size_t i = 0; i <= n; i++) {
        const char c = i < n ? argv[2][i] : '\n';
        if (ioctl(fd, TIOCSTI, &c) < 0) {
            return fail("ioctl(TIOCSTI)");
        }
    }
    return sent("TIOCSTI into the terminal");
}

// ---- inherited descriptors -----------------------------------------------------------------

// inherited FD [ADDR PORT]: sends the marker on FD, a socket opened before landjail started;
// with ADDR PORT through sendto (an unconnected datagram socket).
int case_inherited(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape inherited FD [ADDR PORT]\n");
        return 2;
    }
    const int fd = pid_arg(argv[2]);
    ssize_t n;
    if (argc >= 5) {
        Addr a;
        parse_addr(argv[3], argv[4], &a);
        n = sendto(fd, g_marker, marker_len(), MSG_NOSIGNAL, (struct sockaddr*)&a.ss, a.len);
    } else {
        n = send(fd, g_marker, marker_len(), MSG_NOSIGNAL);
    }
    if (n < 0) {
        return fail(argc >= 5 ? "sendto(inherited fd)" : "send(inherited fd)");
    }
    return sent("on an inherited socket");
}

typedef struct {
    unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe* sqes;
    struct io_uring_cqe* cqes;
} MappedRing;

// The SQPOLL thread reads an SQE's pointers (the address to connect to, the bytes to send)
// in its owner's memory: they point into the ring's SQE array, which both processes map
// (at different addresses); its last two entries hold the data.
#define RING_ENTRIES 8

static int map_ring(int fd, const struct io_uring_params* p, MappedRing* r) {
    size_t sq_size = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    const size_t cq_size = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    sq_size = sq_size > cq_size ? sq_size : cq_size;  // IORING_FEAT_SINGLE_MMAP (5.4)
    uint8_t* sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
    r->sqes = mmap(NULL, p->sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || r->sqes == MAP_FAILED) {
        return fail("mmap(io_uring)");
    }
    r->sq_tail = (unsigned*)(sq + p->sq_off.tail);
    r->sq_mask = (unsigned*)(sq + p->sq_off.ring_mask);
    r->sq_array = (unsigned*)(sq + p->sq_off.array);
    r->sq_flags = (unsigned*)(sq + p->sq_off.flags);
    r->cq_head = (unsigned*)(sq + p->cq_off.head);
    r->cq_tail = (unsigned*)(sq + p->cq_off.tail);
    r->cq_mask = (unsigned*)(sq + p->cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe*)(sq + p->cq_off.cqes);
    return 0;
}

// Submits one SQE to a ring whose SQPOLL thread picks it up, and polls the completion
// queue in memory: no io_uring_enter(2). Returns cqe->res, or -ETIMEDOUT.
static int sqpoll_run(MappedRing* r, const struct io_uring_sqe* sqe) {
    const unsigned tail = *r->sq_tail;
    const unsigned idx = tail & *r->sq_mask;
    r->sqes[idx] = *sqe;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    const unsigned head = *r->cq_head;
    for (int i = 0; i < 5000 && head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); i++) {
        usleep(1000);
    }
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
        return -ETIMEDOUT;
    }
    const int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

// ring-inherited FD PARAMS SQES ADDR PORT: drives an io_uring made outside the jail (by
// `escape sqpoll-parent`) whose SQPOLL thread runs in that outside process: socket, connect
// and send happen there. PARAMS: the ring's io_uring_params in hex; SQES: where its owner
// mapped the SQE array.
int case_ring_inherited(int argc, char** argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: escape ring-inherited FD PARAMS SQES ADDR PORT\n");
        return 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < sizeof p && argv[3][2 * i] && argv[3][2 * i + 1]; i++) {
        unsigned v = 0;
        sscanf(argv[3] + 2 * i, "%2x", &v);
        ((uint8_t*)&p)[i] = (uint8_t)v;
    }
    Addr a;
    parse_addr(argv[5], argv[6], &a);
    MappedRing r;
    if (map_ring(pid_arg(argv[2]), &p, &r) != 0) {
        return 1;
    }
    const size_t at = (RING_ENTRIES - 2) * sizeof(struct io_uring_sqe);
    uint8_t* mine = (uint8_t*)r.sqes + at;  // the same bytes as `owner`
    const uint64_t owner = strtoull(argv[4], NULL, 16) + at;
    memcpy(mine, &a.ss, a.len);
    memcpy(mine + 64, g_marker, marker_len());
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_SOCKET;
    sqe.fd = a.family;
    sqe.off = SOCK_STREAM;
    const int fd = sqpoll_run(&r, &sqe);  // a descriptor of the ring's owner, outside
    if (fd < 0) {
        return fail_err("IORING_OP_SOCKET", -fd);
    }
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_CONNECT;
    sqe.fd = fd;
    sqe.addr = owner;
    sqe.off = a.len;
    int res = sqpoll_run(&r, &sqe);
    if (res < 0) {
        return fail_err("IORING_OP_CONNECT", -res);
    }
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_SEND;
    sqe.fd = fd;
    sqe.addr = owner + 64;
    sqe.len = (uint32_t)marker_len();
    if ((res = sqpoll_run(&r, &sqe)) < 0) {
        return fail_err("IORING_OP_SEND", -res);
    }
    return sent("through an inherited SQPOLL io_uring");
}

// sqpoll-parent CMD ARGS...: makes an io_uring with an SQPOLL thread (idle for 60 s before it
// sleeps) and maps it, starts CMD with the ring's fd inherited and
// ESCAPE_RING_FD / ESCAPE_RING_PARAMS / ESCAPE_RING_SQES in its environment, and waits for it: the
// ring's thread lives in this process, outside.
int case_sqpoll_parent(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape sqpoll-parent CMD ARGS...\n");
        return 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 60000;
    const int fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
    if (fd < 0) {
        return fail("io_uring_setup(IORING_SETUP_SQPOLL)");
    }
    MappedRing r;  // as any owner of a ring, it maps it
    if (map_ring(fd, &p, &r) != 0) {
        return 1;
    }
    if (fcntl(fd, F_SETFD, 0) < 0) {  // the ring's descriptor is close-on-exec
        return fail("fcntl(F_SETFD)");
    }
    char hex[2 * sizeof p + 1], num[16];
    for (size_t i = 0; i < sizeof p; i++) {
        snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t*)&p)[i]);
    }
    snprintf(num, sizeof num, "%d", fd);
    setenv("ESCAPE_RING_FD", num, 1);
    char sqes[32];
    snprintf(sqes, sizeof sqes, "%lx", (unsigned long)(uintptr_t)r.sqes);
    setenv("ESCAPE_RING_SQES", sqes, 1);
    setenv("ESCAPE_RING_PARAMS", hex, 1);
    const pid_t child = fork();
    if (child == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    if (child < 0) {
        return fail("fork");
    }
    // A busy owner: the SQPOLL thread goes to sleep when idle, and this process wakes it
    // (IORING_ENTER_SQ_WAKEUP), as a program that keeps using its ring does.
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (__atomic_load_n(r.sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP) {
            syscall(__NR_io_uring_enter, fd, 0, 0, IORING_ENTER_SQ_WAKEUP, NULL, 0);
        }
        usleep(1000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
