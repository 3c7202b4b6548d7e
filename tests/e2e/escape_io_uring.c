// SPDX-License-Identifier: Apache-2.0
// The escape program's io_uring cases (raw syscalls, no liburing): IORING_OP_SOCKET +
// IORING_OP_CONNECT + IORING_OP_SEND over TCP, and a UDP IORING_OP_SENDMSG
// (tests/e2e/test_escape.py).
#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

// ---- io_uring (raw syscalls, no liburing) --------------------------------------------------

typedef struct {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe* sqes;
    struct io_uring_cqe* cqes;
} Ring;

static int ring_setup(Ring* r) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (r->fd < 0) {
        return fail("io_uring_setup");
    }
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        sq_size = cq_size = sq_size > cq_size ? sq_size : cq_size;
    }
    uint8_t* sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                       IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) {
        return fail("mmap(IORING_OFF_SQ_RING)");
    }
    uint8_t* cq = sq;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                  IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED) {
            return fail("mmap(IORING_OFF_CQ_RING)");
        }
    }
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) {
        return fail("mmap(IORING_OFF_SQES)");
    }
    r->sq_head = (unsigned*)(sq + p.sq_off.head);
    r->sq_tail = (unsigned*)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned*)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned*)(sq + p.sq_off.array);
    r->cq_head = (unsigned*)(cq + p.cq_off.head);
    r->cq_tail = (unsigned*)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned*)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe*)(cq + p.cq_off.cqes);
    return 0;
}

// Submits one SQE, waits for its completion and returns cqe->res (a -errno on failure), or
// sets *err when io_uring_enter itself fails.
static int ring_run(Ring* r, const struct io_uring_sqe* sqe, int* err) {
    const unsigned tail = *r->sq_tail;
    const unsigned idx = tail & *r->sq_mask;
    r->sqes[idx] = *sqe;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
        *err = errno;
        return -1;
    }
    unsigned head = *r->cq_head;
    while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
        if (syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
            *err = errno;
            return -1;
        }
    }
    const int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    *err = 0;
    return res;
}

// One ring operation that must succeed; returns its result or -1 after reporting.
static int ring_step(Ring* r, const struct io_uring_sqe* sqe, const char* step) {
    int err = 0;
    const int res = ring_run(r, sqe, &err);
    if (err != 0) {
        fail_err("io_uring_enter", err);
        return -1;
    }
    if (res < 0) {
        fail_err(step, -res);
        return -1;
    }
    return res;
}

// The socket itself comes from IORING_OP_SOCKET (Linux 5.19), so even socket(2)'s filter is
// not asked; type is SOCK_STREAM (then IORING_OP_CONNECT + IORING_OP_SEND) or SOCK_DGRAM
// (IORING_OP_SENDMSG with a destination).
static int io_uring_send(const Addr* a, int type) {
    Ring r;
    if (ring_setup(&r) != 0) {
        return 1;
    }
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_SOCKET;
    sqe.fd = a->family;
    sqe.off = (unsigned)type;
    const int fd = ring_step(&r, &sqe, "IORING_OP_SOCKET");
    if (fd < 0) {
        return 1;
    }
    struct msghdr m;
    struct iovec iov;
    if (type == SOCK_STREAM) {
        memset(&sqe, 0, sizeof sqe);
        sqe.opcode = IORING_OP_CONNECT;
        sqe.fd = fd;
        sqe.addr = (uint64_t)(uintptr_t)&a->ss;
        sqe.off = a->len;
        if (ring_step(&r, &sqe, "IORING_OP_CONNECT") < 0) {
            return 1;
        }
        memset(&sqe, 0, sizeof sqe);
        sqe.opcode = IORING_OP_SEND;
        sqe.fd = fd;
        sqe.addr = (uint64_t)(uintptr_t)g_marker;
        sqe.len = (uint32_t)marker_len();
    } else {
        fill_msg(&m, &iov, a);
        memset(&sqe, 0, sizeof sqe);
        sqe.opcode = IORING_OP_SENDMSG;
        sqe.fd = fd;
        sqe.addr = (uint64_t)(uintptr_t)&m;
        sqe.len = 1;
    }
    if (ring_step(&r, &sqe, type == SOCK_STREAM ? "IORING_OP_SEND" : "IORING_OP_SENDMSG") < 0) {
        return 1;
    }
    close(fd);
    return sent(type == SOCK_STREAM ? "io_uring socket+connect+send" : "io_uring socket+sendmsg");
}

int case_io_uring(const Addr* a) {
    return io_uring_send(a, SOCK_STREAM);
}
int case_io_uring_udp(const Addr* a) {
    return io_uring_send(a, SOCK_DGRAM);
}
