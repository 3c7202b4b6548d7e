// SPDX-License-Identifier: Apache-2.0
// The escape program's fail-closed case: a grandchild that outlives the supervisor tries TCP
// and UDP once landjail is SIGKILLed (tests/e2e/test_escape.py).
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>

#include "escape.h"

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

int case_failclosed(int argc, char** argv) {
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
