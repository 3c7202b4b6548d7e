// SPDX-License-Identifier: Apache-2.0
// The escape program's cases over ordinary IP sockets: TCP (blocking, non-blocking, fast
// open, MPTCP), UDP (sendto, connect, sendmsg, sendmmsg), loose source routing, and TCP from
// another thread or a vfork'd child. Judged by the loopback listener
// (tests/e2e/test_escape.py).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "escape.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262  // Linux 5.6
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30  // Linux 4.11
#endif

// ---- TCP -----------------------------------------------------------------------------------

static int tcp_with_protocol(const Addr* a, int protocol) {
    const int fd = socket(a->family, SOCK_STREAM, protocol);
    if (fd < 0) {
        return fail("socket");
    }
    if (connect(fd, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("connect");
    }
    if (write_marker(fd) != 0) {
        return 1;
    }
    close(fd);
    return sent("connect+write");
}

int case_tcp(const Addr* a) {
    return tcp_with_protocol(a, 0);
}
int case_mptcp(const Addr* a) {
    return tcp_with_protocol(a, IPPROTO_MPTCP);
}

int case_tcp_nonblock(const Addr* a) {
    const int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return fail("socket");
    }
    if (connect(fd, (const struct sockaddr*)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        return fail("connect");
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 10000) != 1) {
        return fail_err("poll", ETIMEDOUT);
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return fail("getsockopt(SO_ERROR)");
    }
    if (err != 0) {
        return fail_err("connect (SO_ERROR)", err);
    }
    if (write_marker(fd) != 0) {
        return 1;
    }
    close(fd);
    return sent("non-blocking connect+write");
}

// TCP Fast Open, client side through sendto(MSG_FASTOPEN): connects and sends in one call,
// without connect(2).
int case_tfo_sendto(const Addr* a) {
    const int fd = socket(a->family, SOCK_STREAM, 0);
    if (fd < 0) {
        return fail("socket");
    }
    if (sendto(fd, g_marker, marker_len(), MSG_FASTOPEN, (const struct sockaddr*)&a->ss, a->len) <
        0) {
        return fail("sendto(MSG_FASTOPEN)");
    }
    close(fd);
    return sent("sendto(MSG_FASTOPEN)");
}

// TCP Fast Open through TCP_FASTOPEN_CONNECT: connect(2) may return before the SYN, which the
// first write then carries.
int case_tfo_connect(const Addr* a) {
    const int fd = socket(a->family, SOCK_STREAM, 0);
    if (fd < 0) {
        return fail("socket");
    }
    const int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) < 0) {
        return fail("setsockopt(TCP_FASTOPEN_CONNECT)");
    }
    if (connect(fd, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("connect");
    }
    if (write_marker(fd) != 0) {
        return 1;
    }
    close(fd);
    return sent("TCP_FASTOPEN_CONNECT connect+write");
}

// ---- UDP -----------------------------------------------------------------------------------

static int udp_socket(const Addr* a) {
    return socket(a->family, SOCK_DGRAM, 0);
}

int case_udp_sendto(const Addr* a) {
    const int fd = udp_socket(a);
    if (fd < 0) {
        return fail("socket");
    }
    if (sendto(fd, g_marker, marker_len(), 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent("sendto");
}

int case_udp_connect(const Addr* a) {
    const int fd = udp_socket(a);
    if (fd < 0) {
        return fail("socket");
    }
    if (connect(fd, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("connect");
    }
    if (send(fd, g_marker, marker_len(), 0) < 0) {
        return fail("send");
    }
    return sent("connect+send");
}

void fill_msg(struct msghdr* m, struct iovec* iov, const Addr* a) {
    iov->iov_base = g_marker;
    iov->iov_len = marker_len();
    memset(m, 0, sizeof *m);
    m->msg_name = (void*)&a->ss;
    m->msg_namelen = a->len;
    m->msg_iov = iov;
    m->msg_iovlen = 1;
}

int case_udp_sendmsg(const Addr* a) {
    const int fd = udp_socket(a);
    if (fd < 0) {
        return fail("socket");
    }
    struct msghdr m;
    struct iovec iov;
    fill_msg(&m, &iov, a);
    if (sendmsg(fd, &m, 0) < 0) {
        return fail("sendmsg");
    }
    return sent("sendmsg");
}

int case_udp_sendmmsg(const Addr* a) {
    const int fd = udp_socket(a);
    if (fd < 0) {
        return fail("socket");
    }
    struct mmsghdr mm;
    struct iovec iov;
    memset(&mm, 0, sizeof mm);
    fill_msg(&mm.msg_hdr, &iov, a);
    if (sendmmsg(fd, &mm, 1, 0) != 1) {
        return fail("sendmmsg");
    }
    return sent("sendmmsg");
}

// ---- IP options: loose source routing ------------------------------------------------------

// lsrr HOP ADDR PORT: a non-blocking TCP connect to ADDR:PORT (meant to be the proxy) on a
// socket carrying the IP option "loose source route via HOP". Linux sends the SYN to the
// first hop, so the packet goes to HOP (any address), with "ESC!" as a second route entry
// (attacker data). Whoever connects this very socket for us sends that SYN. ADDR may be
// ::ffff:a.b.c.d: an AF_INET6 socket takes SOL_IP options too. Judged by a capture on lo of
// IPv4 packets addressed to HOP.
int case_lsrr(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: escape lsrr HOP ADDR PORT\n");
        return 2;
    }
    Addr a;
    parse_addr(argv[3], argv[4], &a);
    struct in_addr hop, data, dst;
    if (a.family == AF_INET) {
        dst = ((const struct sockaddr_in*)&a.ss)->sin_addr;
    } else {
        memcpy(&dst, &((const struct sockaddr_in6*)&a.ss)->sin6_addr.s6_addr[12], 4);
    }
    if (inet_pton(AF_INET, argv[2], &hop) != 1) {
        fprintf(stderr, "escape lsrr: HOP must be an IPv4 literal\n");
        return 2;
    }
    memcpy(&data, "ESC!", 4);
    // NOP, LSRR, length, pointer, then the route: HOP, "ESC!", and the destination's slot.
    uint8_t opt[16] = {IPOPT_NOP, IPOPT_LSRR, 3 + 3 * 4, IPOPT_MINOFF};
    memcpy(opt + 4, &hop, 4);
    memcpy(opt + 8, &data, 4);
    memcpy(opt + 12, &dst, 4);
    const int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return fail("socket");
    }
    if (setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt) < 0) {
        return fail("setsockopt(IP_OPTIONS, LSRR)");
    }
    if (connect(fd, (const struct sockaddr*)&a.ss, a.len) < 0 && errno != EINPROGRESS) {
        return fail("connect");
    }
    close(fd);
    return sent("connect with a loose source route");
}

// ---- another thread, a vfork'd child -------------------------------------------------------

static void* tcp_thread_main(void* arg) {
    return (void*)(intptr_t)case_tcp(arg);
}

int case_tcp_thread(const Addr* a) {
    pthread_t t;
    void* rc = NULL;
    const int err = pthread_create(&t, NULL, tcp_thread_main, (void*)a);
    if (err != 0) {
        return fail_err("pthread_create", err);
    }
    pthread_join(t, &rc);
    return (int)(intptr_t)rc;
}

// The vfork'd child shares memory with its parent and uses raw syscalls only.
int case_tcp_vfork(const Addr* a) {
    const pid_t pid = vfork();
    if (pid < 0) {
        return fail("vfork");
    }
    if (pid == 0) {
        const long fd = syscall(SYS_socket, a->family, SOCK_STREAM, 0);
        if (fd < 0) {
            _exit(11);
        }
        if (syscall(SYS_connect, fd, &a->ss, a->len) < 0) {
            _exit(12);
        }
        if (syscall(SYS_write, fd, g_marker, marker_len()) < 0) {
            _exit(13);
        }
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        return fail("waitpid");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr,
                "escape[%d] %s: vfork child failed (status 0x%x: 11 socket, 12 connect, "
                "13 write)\n",
                (int)getpid(), g_case, (unsigned)status);
        return 1;
    }
    return sent("connect+write from a vfork'd child");
}
