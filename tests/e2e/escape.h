// SPDX-License-Identifier: Apache-2.0
// What the two sources of the escape program (escape.c: the network cases and the dispatch;
// escape_process.c: the terminal, inherited descriptors, signals and resource limits of
// processes outside the jail) share: the marker, reporting, address parsing.
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

// Runs one of escape_process.c's cases; -1 when argv[1] names none of them.
int process_case(int argc, char** argv);
// The usage lines of escape_process.c's cases.
void process_usage(void);
