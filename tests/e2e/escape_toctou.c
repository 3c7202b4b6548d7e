// SPDX-License-Identifier: Apache-2.0
// The escape program's TOCTOU case: connect(2) on a sockaddr that another thread keeps
// flipping between the proxy's address and a forbidden one while the supervisor decides
// (tests/e2e/test_escape.py).
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

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
int case_toctou(int argc, char** argv) {
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
