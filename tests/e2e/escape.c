// SPDX-License-Identifier: Apache-2.0
// escape: one attacker program for the landjail escape suite (tests/e2e/test_escape.py).
//
//   escape CASE ARGS...
//
// Each case tries one way out of the jail: it sends the marker "ESCAPED <case> <prog>\n" to a
// loopback listener (or a signal to a process) that the test set up outside the jail. It
// exits 0 when every syscall it made reported success, 1 when one failed (the failing syscall
// and errno go to stderr as "escape[PID] CASE: STEP: ERROR"), 2 on a usage error. The test
// never trusts the exit status: it judges by what the listener received. Run without
// arguments for the list of cases. The same source builds escape-static (no dynamic loader,
// so LD_PRELOAD cannot reach it).
#include "escape.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262  // Linux 5.6
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30  // Linux 4.11
#endif

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
#define I386_SOCKETCALL 102
#define I386_SOCKET 359
#define I386_CONNECT 362
#define I386_SYS_SOCKET 1  // socketcall(2) call numbers (linux/net.h)
#define I386_SYS_CONNECT 3
// x32: the x86_64 numbers with bit 30 set (arch/x86/include/uapi/asm/unistd.h).
#define X32_BIT 0x40000000L

const char* g_prog = "escape";
const char* g_case = "?";
char g_marker[128];

// ---- reporting -----------------------------------------------------------------------------

// Reports a failed step with the errno it left and returns 1 (the case's exit status).
int fail(const char* step) {
    const int err = errno;
    fprintf(stderr, "escape[%d] %s: %s: %s\n", (int)getpid(), g_case, step, strerror(err));
    return 1;
}

int fail_err(const char* step, int err) {
    errno = err;
    return fail(step);
}

int sent(const char* what) {
    fprintf(stderr, "escape[%d] %s: sent (%s)\n", (int)getpid(), g_case, what);
    return 0;
}

// ---- addresses -----------------------------------------------------------------------------

// Parses HOST (an IPv4 or IPv6 literal; "::ffff:a.b.c.d" is IPv6) and PORT.
int parse_addr(const char* host, const char* port, Addr* a) {
    memset(a, 0, sizeof *a);
    const long p = strtol(port, NULL, 10);
    struct sockaddr_in* s4 = (struct sockaddr_in*)&a->ss;
    struct sockaddr_in6* s6 = (struct sockaddr_in6*)&a->ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        a->len = sizeof *s4;
        a->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        a->len = sizeof *s6;
        a->family = AF_INET6;
        return 0;
    }
    fprintf(stderr, "escape: not an IP literal: %s\n", host);
    exit(2);
}

size_t marker_len(void) {
    return strlen(g_marker);
}

// Writes the marker on a connected socket.
int write_marker(int fd) {
    const ssize_t n = write(fd, g_marker, marker_len());
    if (n < 0) {
        return fail("write");
    }
    return 0;
}

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

static int case_tcp(const Addr* a) {
    return tcp_with_protocol(a, 0);
}
static int case_mptcp(const Addr* a) {
    return tcp_with_protocol(a, IPPROTO_MPTCP);
}

static int case_tcp_nonblock(const Addr* a) {
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
static int case_tfo_sendto(const Addr* a) {
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
static int case_tfo_connect(const Addr* a) {
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

static int case_udp_sendto(const Addr* a) {
    const int fd = udp_socket(a);
    if (fd < 0) {
        return fail("socket");
    }
    if (sendto(fd, g_marker, marker_len(), 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent("sendto");
}

static int case_udp_connect(const Addr* a) {
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

static void fill_msg(struct msghdr* m, struct iovec* iov, const Addr* a) {
    iov->iov_base = g_marker;
    iov->iov_len = marker_len();
    memset(m, 0, sizeof *m);
    m->msg_name = (void*)&a->ss;
    m->msg_namelen = a->len;
    m->msg_iov = iov;
    m->msg_iovlen = 1;
}

static int case_udp_sendmsg(const Addr* a) {
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

static int case_udp_sendmmsg(const Addr* a) {
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
static int case_lsrr(int argc, char** argv) {
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

// ---- raw and packet sockets ----------------------------------------------------------------

static uint16_t inet_checksum(const void* data, size_t len) {
    const uint8_t* p = data;
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len & 1) {
        sum += (uint32_t)(p[len - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return htons((uint16_t)~sum);
}

// Builds IPv4 + UDP (checksum 0: none, valid for IPv4) + marker towards a; returns its length.
static size_t build_ip_udp(uint8_t* buf, size_t cap, const Addr* a) {
    const struct sockaddr_in* dst = (const struct sockaddr_in*)&a->ss;
    const size_t payload = marker_len();
    const size_t total = sizeof(struct iphdr) + sizeof(struct udphdr) + payload;
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct iphdr* ip = (struct iphdr*)buf;
    ip->version = 4;
    ip->ihl = 5;
    ip->tot_len = htons((uint16_t)total);
    ip->id = htons(0x4a4c);
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = htonl(INADDR_LOOPBACK);
    ip->daddr = dst->sin_addr.s_addr;
    ip->check = inet_checksum(ip, sizeof *ip);
    struct udphdr* udp = (struct udphdr*)(buf + sizeof *ip);
    udp->source = htons(40000);
    udp->dest = dst->sin_port;
    udp->len = htons((uint16_t)(sizeof *udp + payload));
    memcpy(buf + sizeof *ip + sizeof *udp, g_marker, payload);
    return total;
}

// SOCK_RAW/IPPROTO_RAW (IP_HDRINCL): a hand-made IPv4/UDP datagram to the UDP listener.
static int case_raw(const Addr* a) {
    if (a->family != AF_INET) {
        return fail_err("raw: IPv4 only", EINVAL);
    }
    const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) {
        return fail("socket(SOCK_RAW, IPPROTO_RAW)");
    }
    uint8_t pkt[256];
    const size_t n = build_ip_udp(pkt, sizeof pkt, a);
    if (sendto(fd, pkt, n, 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent("raw IPv4/UDP");
}

// SOCK_RAW AF_INET6/IPPROTO_UDP: a hand-made UDP header; the kernel adds the IPv6 header and
// computes the checksum (IPV6_CHECKSUM).
static int case_raw6(const Addr* a) {
    if (a->family != AF_INET6) {
        return fail_err("raw6: IPv6 only", EINVAL);
    }
    const int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
    if (fd < 0) {
        return fail("socket(AF_INET6, SOCK_RAW, IPPROTO_UDP)");
    }
    const int off = 6;  // offsetof(struct udphdr, check)
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off) < 0) {
        return fail("setsockopt(IPV6_CHECKSUM)");
    }
    uint8_t pkt[256];
    const size_t payload = marker_len();
    struct udphdr* udp = (struct udphdr*)pkt;
    memset(udp, 0, sizeof *udp);
    udp->source = htons(40000);
    udp->dest = ((const struct sockaddr_in6*)&a->ss)->sin6_port;
    udp->len = htons((uint16_t)(sizeof *udp + payload));
    memcpy(pkt + sizeof *udp, g_marker, payload);
    struct sockaddr_in6 dst = *(const struct sockaddr_in6*)&a->ss;
    dst.sin6_port = 0;  // for raw IPv6 sockets the port field is the protocol (0: the socket's)
    if (sendto(fd, pkt, sizeof *udp + payload, 0, (const struct sockaddr*)&dst, sizeof dst) < 0) {
        return fail("sendto");
    }
    return sent("raw IPv6/UDP");
}

static size_t build_icmp_echo(uint8_t* buf, size_t cap) {
    const size_t total = sizeof(struct icmphdr) + marker_len();
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct icmphdr* h = (struct icmphdr*)buf;
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(0x4a4c);
    h->un.echo.sequence = htons(1);
    memcpy(buf + sizeof *h, g_marker, marker_len());
    h->checksum = inet_checksum(buf, total);
    return total;
}

static int icmp_with_type(const Addr* a, int type, const char* what) {
    if (a->family != AF_INET) {
        return fail_err("icmp: IPv4 only", EINVAL);
    }
    const int fd = socket(AF_INET, type, IPPROTO_ICMP);
    if (fd < 0) {
        return fail(type == SOCK_RAW ? "socket(SOCK_RAW, IPPROTO_ICMP)"
                                     : "socket(SOCK_DGRAM, IPPROTO_ICMP)");
    }
    uint8_t pkt[256];
    const size_t n = build_icmp_echo(pkt, sizeof pkt);
    if (sendto(fd, pkt, n, 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent(what);
}

static int case_raw_icmp(const Addr* a) {
    return icmp_with_type(a, SOCK_RAW, "raw ICMP echo");
}
static int case_ping(const Addr* a) {
    return icmp_with_type(a, SOCK_DGRAM, "ping-socket echo");
}

// Builds IPv6 + UDP (checksum over the pseudo-header: mandatory in IPv6) + marker from ::1
// towards a; returns its length.
static size_t build_ip6_udp(uint8_t* buf, size_t cap, const Addr* a) {
    const struct sockaddr_in6* dst = (const struct sockaddr_in6*)&a->ss;
    const size_t payload = marker_len();
    const size_t udp_len = sizeof(struct udphdr) + payload;
    const size_t total = sizeof(struct ip6_hdr) + udp_len;
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct ip6_hdr* ip6 = (struct ip6_hdr*)buf;
    ip6->ip6_flow = htonl(6u << 28);
    ip6->ip6_plen = htons((uint16_t)udp_len);
    ip6->ip6_nxt = IPPROTO_UDP;
    ip6->ip6_hlim = 64;
    ip6->ip6_src = in6addr_loopback;
    ip6->ip6_dst = dst->sin6_addr;
    struct udphdr* udp = (struct udphdr*)(buf + sizeof *ip6);
    udp->source = htons(40000);
    udp->dest = dst->sin6_port;
    udp->len = htons((uint16_t)udp_len);
    memcpy(buf + sizeof *ip6 + sizeof *udp, g_marker, payload);
    // Pseudo-header (RFC 8200 8.1): source, destination, length, next header; then UDP.
    uint8_t pseudo[40 + 256];
    if (udp_len > 256) {
        exit(2);
    }
    memset(pseudo, 0, 40);
    memcpy(pseudo, &ip6->ip6_src, 16);
    memcpy(pseudo + 16, &ip6->ip6_dst, 16);
    const uint32_t len_be = htonl((uint32_t)udp_len);
    memcpy(pseudo + 32, &len_be, 4);
    pseudo[39] = IPPROTO_UDP;
    memcpy(pseudo + 40, udp, udp_len);
    udp->check = inet_checksum(pseudo, 40 + udp_len);
    if (udp->check == 0) {
        udp->check = 0xffff;
    }
    return total;
}

// AF_PACKET on lo: a whole Ethernet frame (lo's address is all zeros) carrying IPv6/UDP to
// ::1, which lo loops back into the stack and the UDP listener receives. (IPv4 is not used:
// a frame to 127.0.0.0/8 coming in without a route is a martian unless route_localnet is set.)
static int case_packet(const Addr* a) {
    if (a->family != AF_INET6) {
        return fail_err("packet: IPv6 only", EINVAL);
    }
    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
    if (fd < 0) {
        return fail("socket(AF_PACKET, SOCK_RAW)");
    }
    const unsigned ifindex = if_nametoindex("lo");
    if (ifindex == 0) {
        return fail("if_nametoindex(lo)");
    }
    uint8_t frame[512];
    struct ether_header* eth = (struct ether_header*)frame;
    memset(eth, 0, sizeof *eth);
    eth->ether_type = htons(ETHERTYPE_IPV6);
    const size_t n = build_ip6_udp(frame + sizeof *eth, sizeof frame - sizeof *eth, a);
    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_IPV6);
    ll.sll_ifindex = (int)ifindex;
    ll.sll_halen = ETH_ALEN;
    if (sendto(fd, frame, sizeof *eth + n, 0, (const struct sockaddr*)&ll, sizeof ll) < 0) {
        return fail("sendto");
    }
    return sent("AF_PACKET frame on lo");
}

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

static int case_i386_socketcall(const Addr* a) {
    const uint32_t args[3] = {(uint32_t)a->family, SOCK_STREAM, 0};
    const long fd =
        int80(I386_SOCKETCALL, I386_SYS_SOCKET, (long)(uintptr_t)low_copy(args, sizeof args), 0);
    return after_i386_socket(fd, a, 1);
}

static int case_i386_connect(const Addr* a) {
    const long fd = int80(I386_SOCKET, a->family, SOCK_STREAM, 0);
    return after_i386_socket(fd, a, 0);
}

static int case_x32(const Addr* a) {
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
static int case_i386_socketcall(const Addr* a) {
    (void)a;
    return fail_err("i386 socketcall: x86_64 only", ENOSYS);
}
static int case_i386_connect(const Addr* a) {
    (void)a;
    return fail_err("i386 connect: x86_64 only", ENOSYS);
}
static int case_x32(const Addr* a) {
    (void)a;
    return fail_err("x32: x86_64 only", ENOSYS);
}
#endif

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

static int case_io_uring(const Addr* a) {
    return io_uring_send(a, SOCK_STREAM);
}
static int case_io_uring_udp(const Addr* a) {
    return io_uring_send(a, SOCK_DGRAM);
}

// ---- another thread, a vfork'd child -------------------------------------------------------

static void* tcp_thread_main(void* arg) {
    return (void*)(intptr_t)case_tcp(arg);
}

static int case_tcp_thread(const Addr* a) {
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
static int case_tcp_vfork(const Addr* a) {
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

// ---- TOCTOU: flip the address while connect(2) is being decided ---------------------------

typedef struct {
    struct sockaddr_in sa;  // read by connect(2) in the main thread, rewritten by the flipper
    struct in_addr first, second;
    atomic_int stop;
} Flip;

static void* flipper_main(void* arg) {
    Flip* f = arg;
    volatile struct in_addr* target = &f->sa.sin_addr;
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        target->s_addr = f->first.s_addr;
        target->s_addr = f->second.s_addr;
    }
    return NULL;
}

// toctou PROXY_ADDR OTHER_ADDR PORT TRIES: connect(2) on a sockaddr whose address another
// thread keeps flipping between the proxy's and a forbidden one (same port). It writes the
// marker on, and stops at, the first connection whose peer is not the proxy.
static int case_toctou(int argc, char** argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: escape toctou PROXY_ADDR OTHER_ADDR PORT TRIES\n");
        return 2;
    }
    Flip f;
    memset(&f, 0, sizeof f);
    if (inet_pton(AF_INET, argv[2], &f.first) != 1 || inet_pton(AF_INET, argv[3], &f.second) != 1) {
        fprintf(stderr, "escape toctou: IPv4 literals only\n");
        return 2;
    }
    f.sa.sin_family = AF_INET;
    f.sa.sin_port = htons((uint16_t)strtol(argv[4], NULL, 10));
    f.sa.sin_addr = f.first;
    const long tries = strtol(argv[5], NULL, 10);
    pthread_t t;
    const int err = pthread_create(&t, NULL, flipper_main, &f);
    if (err != 0) {
        return fail_err("pthread_create", err);
    }
    long to_proxy = 0, refused = 0, other_errors = 0, i = 0;
    int escaped = 0, last_errno = 0;
    for (; i < tries && !escaped; i++) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            return fail("socket");
        }
        if (connect(fd, (const struct sockaddr*)&f.sa, sizeof f.sa) == 0) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            if (getpeername(fd, (struct sockaddr*)&peer, &len) == 0 &&
                peer.sin_addr.s_addr == f.first.s_addr) {
                to_proxy++;
            } else {
                escaped = write_marker(fd) == 0;
            }
        } else if (errno == ECONNREFUSED) {
            refused++;
        } else {
            other_errors++;
            last_errno = errno;
        }
        close(fd);
    }
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    fprintf(stderr,
            "escape[%d] toctou: %ld tries: %ld to the proxy, %ld refused, %ld other errors "
            "(last: %s), escaped: %s\n",
            (int)getpid(), i, to_proxy, refused, other_errors,
            last_errno ? strerror(last_errno) : "none", escaped ? "yes" : "no");
    return escaped ? 0 : 1;
}

// ---- tampering with the proxy's memory ------------------------------------------------------

// Reads /proc/PID/stat: comm (into comm[16]) and the parent pid; 0 on success.
int read_stat(int pid, char comm[16], int* ppid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = 0;
    char* open_paren = strchr(buf, '(');
    char* close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren - open_paren > 16) {
        return -1;
    }
    *close_paren = 0;
    snprintf(comm, 16, "%s", open_paren + 1);
    char state = 0;
    return sscanf(close_paren + 2, "%c %d", &state, ppid) == 2 ? 0 : -1;
}

// Whether /proc/PID/cmdline has the argument pair "--listen" LISTEN.
static int listens_on(int pid, const char* listen) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = 0;
    for (const char* arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
        const char* next = arg + strlen(arg) + 1;
        if (strcmp(arg, "--listen") == 0 && next < buf + n && strcmp(next, listen) == 0) {
            return 1;
        }
    }
    return 0;
}

// The landjail-proxy started with --listen ADDR:PORT (by landjail --proxy-port, or by hand).
int find_proxy(const char* addr, const char* port) {
    char listen[128];
    snprintf(listen, sizeof listen, "%s:%s", addr, port);
    DIR* d = opendir("/proc");
    if (!d) {
        return -1;
    }
    int found = -1;
    for (struct dirent* e; found < 0 && (e = readdir(d));) {
        const int pid = atoi(e->d_name);
        char name[16];
        int parent = 0;
        if (pid > 0 && read_stat(pid, name, &parent) == 0 && strcmp(name, "landjail-proxy") == 0 &&
            listens_on(pid, listen)) {
            found = pid;
        }
    }
    closedir(d);
    return found;
}

// Overwrites every copy of from[0..len) with to in the writable mappings of pid through
// /proc/PID/mem; returns the number of copies, or -1 after reporting.
static int rewrite_memory(int pid, const uint8_t* from, const uint8_t* to, size_t len) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    const int mem = open(path, O_RDWR | O_CLOEXEC);
    if (mem < 0) {
        return fail("open(/proc/PROXY/mem, O_RDWR)"), -1;
    }
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE* maps = fopen(path, "re");
    if (!maps) {
        return fail("fopen(/proc/PROXY/maps)"), -1;
    }
    int copies = 0;
    char line[512];
    static uint8_t chunk[1 << 20];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo = 0, hi = 0;
        char perms[8] = "";
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || strncmp(perms, "rw", 2) != 0) {
            continue;
        }
        if (hi - lo > (1UL << 30)) {
            continue;  // reserved address space (sanitizer shadow, allocator arenas), not data
        }
        for (unsigned long at = lo; at < hi; at += sizeof chunk - len) {
            const size_t want = hi - at < sizeof chunk ? hi - at : sizeof chunk;
            const ssize_t n = pread(mem, chunk, want, (off_t)at);
            if (n < (ssize_t)len) {
                break;
            }
            for (uint8_t* p = chunk; (p = memmem(p, (size_t)n - (size_t)(p - chunk), from, len));
                 p++) {
                const off_t where = (off_t)(at + (unsigned long)(p - chunk));
                if (pwrite(mem, to, len, where) == (ssize_t)len) {
                    copies++;
                }
            }
            if (want < sizeof chunk) {
                break;
            }
        }
    }
    fclose(maps);
    close(mem);
    return copies;
}

// "hex:0a0b..." or plain text into out; returns the length.
static size_t parse_bytes(const char* spec, uint8_t* out, size_t cap) {
    if (strncmp(spec, "hex:", 4) != 0) {
        const size_t n = strnlen(spec, cap);
        memcpy(out, spec, n);
        return n;
    }
    size_t n = 0;
    for (const char* p = spec + 4; p[0] && p[1] && n < cap; p += 2) {
        unsigned v = 0;
        sscanf(p, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

// proxymem PID|auto FROM TO PROXY_ADDR PROXY_PORT URL: overwrites every copy of the bytes FROM
// with TO (same length; text or hex:...) in the proxy's writable memory, then asks the proxy
// for URL. "auto": the landjail-proxy listening on PROXY_ADDR:PROXY_PORT. The proxy runs outside
// the jail; a process that can write its memory owns its policy and its resolver.
static int case_proxymem(int argc, char** argv) {
    uint8_t from[64], to[64];
    const size_t from_len = argc >= 5 ? parse_bytes(argv[3], from, sizeof from) : 0;
    const size_t to_len = argc >= 5 ? parse_bytes(argv[4], to, sizeof to) : 1;
    if (argc < 8 || from_len != to_len || from_len == 0) {
        fprintf(stderr,
                "usage: escape proxymem PID|auto FROM TO PROXY_ADDR PROXY_PORT URL "
                "(FROM and TO: text or hex:..., of the same length)\n");
        return 2;
    }
    const int pid = strcmp(argv[2], "auto") == 0 ? find_proxy(argv[5], argv[6]) : atoi(argv[2]);
    if (pid <= 0) {
        return fail_err("find the landjail-proxy process", ESRCH);
    }
    const int copies = rewrite_memory(pid, from, to, from_len);
    if (copies < 0) {
        return 1;
    }
    fprintf(stderr, "escape[%d] proxymem: rewrote %d copies of %s in pid %d\n", (int)getpid(),
            copies, argv[3], pid);
    Addr proxy;
    parse_addr(argv[5], argv[6], &proxy);
    const int fd = socket(proxy.family, SOCK_STREAM, 0);
    if (fd < 0) {
        return fail("socket");
    }
    if (connect(fd, (const struct sockaddr*)&proxy.ss, proxy.len) < 0) {
        return fail("connect (proxy)");
    }
    const char* host = strstr(argv[7], "://");
    host = host ? host + 3 : argv[7];
    char req[512];
    const int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %.*s\r\nConnection: close\r\n\r\n",
                 argv[7], (int)strcspn(host, "/"), host);
    if (write(fd, req, (size_t)n) != n) {
        return fail("write (request)");
    }
    // The answer: 403 when the policy holds, 502 when the proxy found nothing at the
    // address it was given, 2xx when it reached the (rewritten) one.
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char resp[256] = "";
    if (poll(&p, 1, 10000) == 1) {
        const ssize_t got = read(fd, resp, sizeof resp - 1);
        resp[got > 0 ? got : 0] = 0;
        resp[strcspn(resp, "\r\n")] = 0;
    }
    fprintf(stderr, "escape[%d] proxymem: proxy answered: %s\n", (int)getpid(),
            resp[0] ? resp : "(nothing)");
    close(fd);
    return strncmp(resp, "HTTP/1.1 2", 10) == 0 ? 0 : 1;
}

// ---- processes and unix sockets outside the jail -------------------------------------------

static int case_signal(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape signal PID\n");
        return 2;
    }
    if (kill((pid_t)strtol(argv[2], NULL, 10), SIGUSR1) < 0) {
        return fail("kill(SIGUSR1)");
    }
    return sent("SIGUSR1");
}

static socklen_t abstract_addr(struct sockaddr_un* un, const char* name) {
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    const size_t n = strnlen(name, sizeof un->sun_path - 1);
    memcpy(un->sun_path + 1, name, n);  // sun_path[0] == 0: the abstract namespace
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int case_abstract(int argc, char** argv, int type) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape %s NAME\n", argv[1]);
        return 2;
    }
    struct sockaddr_un un;
    const socklen_t len = abstract_addr(&un, argv[2]);
    const int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) {
        return fail("socket(AF_UNIX)");
    }
    if (type == SOCK_DGRAM) {
        if (sendto(fd, g_marker, marker_len(), 0, (struct sockaddr*)&un, len) < 0) {
            return fail("sendto");
        }
        return sent("abstract unix datagram");
    }
    if (connect(fd, (struct sockaddr*)&un, len) < 0) {
        return fail("connect");
    }
    if (write_marker(fd) != 0) {
        return 1;
    }
    return sent("abstract unix stream");
}

// victim [group]: runs outside the jail (with "group": as the leader of a new process group
// in its session). Prints "READY PID", then "SIG N FROM PID" for each SIGUSR1 /
// SIGUSR2 / SIGTERM it gets, in order (sigwaitinfo takes the lowest pending number first, so a
// SIGUSR1 sent before the test's SIGUSR2 is always reported before it); exits after SIGUSR2
// or SIGTERM.
static int case_victim(int argc, char** argv) {
    if (argc >= 3 && strcmp(argv[2], "group") == 0 && setpgid(0, 0) < 0) {
        return fail("setpgid(0, 0)");
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("READY %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        siginfo_t si;
        const int sig = sigwaitinfo(&set, &si);
        if (sig < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("sigwaitinfo");
        }
        printf("SIG %d FROM %d\n", sig, (int)si.si_pid);
        fflush(stdout);
        if (sig != SIGUSR1) {
            return 0;
        }
    }
}

// ---- fail closed: a grandchild that outlives the supervisor --------------------------------

// failclosed GO_FIFO ADDR PORT PROXY_ADDR PROXY_PORT: double-forks a grandchild (in its own
// session), prints "READY DIRECT_PID GRANDCHILD_PID" and waits forever. The grandchild prints
// "WAITING", blocks opening GO_FIFO until the test (after SIGKILLing landjail) opens it for
// writing, then tries TCP to ADDR:PORT and to PROXY_ADDR:PROXY_PORT (blocking and
// non-blocking), UDP to ADDR:PORT, printing "GRANDCHILD <attempt>: <result>" for each and
// "GRANDCHILD DONE" at the end.
static void grandchild_try(const char* what, int (*fn)(const Addr*), const Addr* a) {
    g_case = what;
    const int rc = fn(a);
    printf("GRANDCHILD %s: %s\n", what, rc == 0 ? "sent" : "failed");
    fflush(stdout);
}

static int grandchild_main(char** argv) {
    dup2(STDOUT_FILENO, STDERR_FILENO);  // the errors too go to the test, which reads stdout
    printf("WAITING %d\n", (int)getpid());
    fflush(stdout);
    const int fd = open(argv[2], O_RDONLY);
    if (fd < 0) {
        return fail("open(GO_FIFO)");
    }
    char go[8];
    const ssize_t n = read(fd, go, sizeof go);
    close(fd);
    printf("GRANDCHILD go: %zd byte(s)\n", n);
    fflush(stdout);
    Addr listener, proxy;
    parse_addr(argv[3], argv[4], &listener);
    parse_addr(argv[5], argv[6], &proxy);
    grandchild_try("tcp-listener", case_tcp, &listener);
    grandchild_try("tcp-nonblock-listener", case_tcp_nonblock, &listener);
    grandchild_try("tcp-proxy-port", case_tcp, &proxy);
    grandchild_try("tcp-nonblock-proxy-port", case_tcp_nonblock, &proxy);
    grandchild_try("udp-listener", case_udp_sendto, &listener);
    printf("GRANDCHILD DONE\n");
    fflush(stdout);
    return 0;
}

static int case_failclosed(int argc, char** argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: escape failclosed GO_FIFO ADDR PORT PROXY_ADDR PROXY_PORT\n");
        return 2;
    }
    int p[2];
    if (pipe(p) < 0) {
        return fail("pipe");
    }
    const pid_t mid = fork();
    if (mid < 0) {
        return fail("fork");
    }
    if (mid == 0) {
        setsid();
        const pid_t gc = fork();
        if (gc == 0) {
            close(p[0]);
            close(p[1]);
            _exit(grandchild_main(argv));
        }
        const int gc_pid = (int)gc;
        (void)!write(p[1], &gc_pid, sizeof gc_pid);
        _exit(gc < 0 ? 1 : 0);
    }
    close(p[1]);
    int gc_pid = -1;
    if (read(p[0], &gc_pid, sizeof gc_pid) != (ssize_t)sizeof gc_pid || gc_pid < 0) {
        return fail("fork (grandchild)");
    }
    waitpid(mid, NULL, 0);
    printf("READY %d %d\n", (int)getpid(), gc_pid);
    fflush(stdout);
    for (;;) {
        pause();
    }
}

// ---- dispatch ------------------------------------------------------------------------------

typedef struct {
    const char* name;
    int (*fn)(const Addr*);
    const char* help;
} AddrCase;

static const AddrCase kAddrCases[] = {
    {"tcp", case_tcp, "connect(2) + write(2)"},
    {"tcp-nonblock", case_tcp_nonblock, "O_NONBLOCK connect(2), poll, SO_ERROR, write(2)"},
    {"tcp-thread", case_tcp_thread, "tcp from a second thread"},
    {"tcp-vfork", case_tcp_vfork, "tcp from a vfork'd child (raw syscalls)"},
    {"tfo-sendto", case_tfo_sendto, "sendto(MSG_FASTOPEN) without connect(2)"},
    {"tfo-connect", case_tfo_connect, "TCP_FASTOPEN_CONNECT, connect(2), write(2)"},
    {"mptcp", case_mptcp, "socket(..., IPPROTO_MPTCP) + connect + write"},
    {"udp-sendto", case_udp_sendto, "UDP sendto(2)"},
    {"udp-connect", case_udp_connect, "UDP connect(2) + send(2)"},
    {"udp-sendmsg", case_udp_sendmsg, "UDP sendmsg(2) with msg_name"},
    {"udp-sendmmsg", case_udp_sendmmsg, "UDP sendmmsg(2) with msg_name"},
    {"raw", case_raw, "SOCK_RAW/IPPROTO_RAW: hand-made IPv4/UDP datagram (needs CAP_NET_RAW)"},
    {"raw6", case_raw6, "SOCK_RAW AF_INET6/IPPROTO_UDP datagram (needs CAP_NET_RAW)"},
    {"raw-icmp", case_raw_icmp, "SOCK_RAW/IPPROTO_ICMP echo request (needs CAP_NET_RAW)"},
    {"ping", case_ping, "SOCK_DGRAM/IPPROTO_ICMP echo (needs net.ipv4.ping_group_range)"},
    {"packet", case_packet, "AF_PACKET frame on lo carrying IPv6/UDP (needs CAP_NET_RAW)"},
    {"i386-socketcall", case_i386_socketcall, "int $0x80 socketcall(SOCKET/CONNECT)"},
    {"i386-connect", case_i386_connect, "int $0x80 socket(359) + connect(362)"},
    {"x32", case_x32, "x32 socket + connect (needs CONFIG_X86_X32_ABI)"},
    {"io_uring", case_io_uring, "IORING_OP_SOCKET + IORING_OP_CONNECT + IORING_OP_SEND"},
    {"io_uring-udp", case_io_uring_udp, "IORING_OP_SOCKET(SOCK_DGRAM) + IORING_OP_SENDMSG"},
};

static void usage(void) {
    fprintf(stderr,
            "usage: %s CASE ARGS...\n\ncases taking ADDR PORT (ADDR: IPv4 or IPv6 "
            "literal, ::ffff:a.b.c.d is IPv6):\n",
            g_prog);
    for (size_t i = 0; i < sizeof kAddrCases / sizeof kAddrCases[0]; i++) {
        fprintf(stderr, "  %-16s %s\n", kAddrCases[i].name, kAddrCases[i].help);
    }
    fprintf(stderr,
            "other cases:\n"
            "  toctou PROXY_ADDR OTHER_ADDR PORT TRIES\n"
            "  lsrr HOP ADDR PORT             TCP connect to ADDR:PORT, source-routed via HOP\n"
            "  proxymem PID|auto FROM TO PROXY_ADDR PROXY_PORT URL\n"
            "                                 rewrite FROM to TO in the proxy's memory, then\n"
            "                                 GET URL through it\n"
            "  signal PID                     SIGUSR1 to PID\n"
            "  abstract NAME                  connect to the abstract unix stream socket @NAME\n"
            "  abstract-dgram NAME            sendto the abstract unix datagram socket @NAME\n"
            "  failclosed GO_FIFO ADDR PORT PROXY_ADDR PROXY_PORT\n"
            "  victim [group]                 (runs outside the jail) report signals received;\n"
            "                                 group: in a process group of its own\n");
    process_usage();
}

int main(int argc, char** argv) {
    const char* slash = strrchr(argv[0], '/');
    g_prog = slash ? slash + 1 : argv[0];
    if (argc < 2) {
        usage();
        return 2;
    }
    g_case = argv[1];
    snprintf(g_marker, sizeof g_marker, "ESCAPED %s %s\n", g_case, g_prog);
    for (size_t i = 0; i < sizeof kAddrCases / sizeof kAddrCases[0]; i++) {
        if (strcmp(g_case, kAddrCases[i].name) == 0) {
            if (argc < 4) {
                usage();
                return 2;
            }
            Addr a;
            parse_addr(argv[2], argv[3], &a);
            return kAddrCases[i].fn(&a);
        }
    }
    if (strcmp(g_case, "toctou") == 0) {
        return case_toctou(argc, argv);
    }
    if (strcmp(g_case, "proxymem") == 0) {
        return case_proxymem(argc, argv);
    }
    if (strcmp(g_case, "lsrr") == 0) {
        return case_lsrr(argc, argv);
    }
    if (strcmp(g_case, "signal") == 0) {
        return case_signal(argc, argv);
    }
    if (strcmp(g_case, "abstract") == 0) {
        return case_abstract(argc, argv, SOCK_STREAM);
    }
    if (strcmp(g_case, "abstract-dgram") == 0) {
        return case_abstract(argc, argv, SOCK_DGRAM);
    }
    if (strcmp(g_case, "failclosed") == 0) {
        return case_failclosed(argc, argv);
    }
    if (strcmp(g_case, "victim") == 0) {
        return case_victim(argc, argv);
    }
    const int rc = process_case(argc, argv);
    if (rc >= 0) {
        return rc;
    }
    usage();
    return 2;
}
