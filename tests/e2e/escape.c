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
// arguments for the list of cases. The same sources build escape-static (no dynamic loader,
// so LD_PRELOAD cannot reach it).
//
// This file holds main(), the reporting and address helpers and the dispatch; each family of
// cases lives in an escape_FAMILY.c of its own (escape.h lists them).
#include "escape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

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
