// SPDX-License-Identifier: Apache-2.0
// What the sources of the escape program share: the marker, reporting, address parsing, and
// one entry point per case. escape.c holds main() and the dispatch of the network cases,
// escape_process.c the dispatch of the cases against processes outside the jail; each
// escape_FAMILY.c holds one family of cases. Every case returns the program's exit status: 0
// when its syscalls succeeded, 1 when one failed (reported on stderr), 2 on a usage error.
#pragma once

#include <stddef.h>
#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
} Addr;

extern const char* g_prog;  // basename of argv[0]
extern const char* g_case;  // the case being run
extern char g_marker[128];  // "ESCAPED <case> <prog>\n"

// Reports a failed step with the errno it left and returns 1 (the case's exit status).
int fail(const char* step);
int fail_err(const char* step, int err);
// Reports that the case's syscalls succeeded and returns 0.
int sent(const char* what);
// Parses HOST (an IPv4 or IPv6 literal) and PORT; exits 2 when HOST is neither.
int parse_addr(const char* host, const char* port, Addr* a);
size_t marker_len(void);
// Writes the marker on a connected socket; 0 or 1 after reporting.
int write_marker(int fd);
// The landjail-proxy started with --listen ADDR:PORT, or -1.
int find_proxy(const char* addr, const char* port);
// Reads /proc/PID/stat: comm (into comm[16]) and the parent pid; 0 on success.
int read_stat(int pid, char comm[16], int* ppid);
// Fills a msghdr sending the marker to `a` (UDP sendmsg, io_uring SENDMSG).
void fill_msg(struct msghdr* m, struct iovec* iov, const Addr* a);
// A decimal pid argument.
int pid_arg(const char* s);

// ---- cases taking ADDR PORT (escape.c's table) ---------------------------------------------

// escape_inet.c: TCP, UDP, and TCP from another thread or a vfork'd child.
int case_tcp(const Addr* a);
int case_tcp_nonblock(const Addr* a);
int case_tcp_thread(const Addr* a);
int case_tcp_vfork(const Addr* a);
int case_tfo_sendto(const Addr* a);
int case_tfo_connect(const Addr* a);
int case_mptcp(const Addr* a);
int case_udp_sendto(const Addr* a);
int case_udp_connect(const Addr* a);
int case_udp_sendmsg(const Addr* a);
int case_udp_sendmmsg(const Addr* a);
// escape_raw.c: raw and packet sockets.
int case_raw(const Addr* a);
int case_raw6(const Addr* a);
int case_raw_icmp(const Addr* a);
int case_ping(const Addr* a);
int case_packet(const Addr* a);
// escape_abi.c: the i386 and x32 system call ABIs.
int case_i386_socketcall(const Addr* a);
int case_i386_connect(const Addr* a);
int case_x32(const Addr* a);
// escape_io_uring.c: io_uring over TCP and UDP.
int case_io_uring(const Addr* a);
int case_io_uring_udp(const Addr* a);

// ---- cases with arguments of their own (escape.c's dispatch) -------------------------------

int case_lsrr(int argc, char** argv);      // escape_inet.c
int case_toctou(int argc, char** argv);    // escape_toctou.c
int case_proxymem(int argc, char** argv);  // escape_proxymem.c
int case_signal(int argc, char** argv);    // escape_outside.c
int case_abstract(int argc, char** argv, int type);
int case_victim(int argc, char** argv);
int case_failclosed(int argc, char** argv);  // escape_failclosed.c

// ---- processes outside the jail (escape_process.c's dispatch) ------------------------------

// escape_inherited.c: the terminal and descriptors inherited from outside.
int case_tiocsti(int argc, char** argv);
int case_inherited(int argc, char** argv);
int case_ring_inherited(int argc, char** argv);
int case_sqpoll_parent(int argc, char** argv);
// escape_limits.c: resource limits and scheduling of outside processes.
int case_prlimit(int argc, char** argv);
int case_sched(int argc, char** argv);
int case_renice_user(void);
// escape_signals.c: signals to outside processes.
int case_kill0(int argc, char** argv);
int case_killpg(int argc, char** argv);
int case_pidfd_proc(int argc, char** argv);
int case_pidfd_open(int argc, char** argv);
int case_pidfd_fdswap(int argc, char** argv);
int case_fsetown(int argc, char** argv);

// Runs one of escape_process.c's cases; -1 when argv[1] names none of them.
int process_case(int argc, char** argv);
// The usage lines of escape_process.c's cases.
void process_usage(void);
