// SPDX-License-Identifier: Apache-2.0
// The escape program's cases against processes and unix sockets outside the jail: a signal
// to an outside process, abstract unix stream and datagram sockets, and the outside victim
// that reports the signals it gets (tests/e2e/test_escape.py).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "escape.h"

// ---- processes and unix sockets outside the jail -------------------------------------------

int case_signal(int argc, char** argv) {
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

int case_abstract(int argc, char** argv, int type) {
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
int case_victim(int argc, char** argv) {
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
