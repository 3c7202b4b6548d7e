// SPDX-License-Identifier: Apache-2.0
// The escape program's cases that signal processes outside the jail: kill(0), killpg, pidfds
// (from /proc, pidfd_open, a raced descriptor) and SIGIO owners, judged by an `escape victim`
// outside the jail (tests/e2e/test_escape_process.py).
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "escape.h"

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP 4  // Linux 6.9
#endif
#ifndef F_SETSIG
#define F_SETSIG 10
#endif
#ifndef F_SETOWN_EX
#define F_SETOWN_EX 15
#define F_OWNER_TID 0
#define F_OWNER_PID 1
#define F_OWNER_PGRP 2
struct f_owner_ex {
    int type;
    pid_t pid;
};
#endif

// ---- signals to processes outside ----------------------------------------------------------

static long pidfd_send(int fd, int sig, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, NULL, flags);
}

// kill0 [PGID]: joins process group PGID first (setpgid), then kill(0, SIGUSR1): our own
// process group.
int case_kill0(int argc, char** argv) {
    if (argc >= 3 && setpgid(0, pid_arg(argv[2])) < 0) {
        return fail("setpgid(0, PGID)");
    }
    if (kill(0, SIGUSR1) < 0) {
        return fail("kill(0, SIGUSR1)");
    }
    return sent("kill(0)");
}

// killpg PGID: kill(-PGID, SIGUSR1).
int case_killpg(int argc, char** argv) {
    if (argc < 3) {
        return 2;
    }
    if (kill(-pid_arg(argv[2]), SIGUSR1) < 0) {
        return fail("kill(-PGID, SIGUSR1)");
    }
    return sent("kill(-PGID)");
}

// pidfd-proc PID: pidfd_send_signal on a /proc/PID directory (which works as a pidfd).
int case_pidfd_proc(int argc, char** argv) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s", argc >= 3 ? argv[2] : "0");
    const int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return fail("open(/proc/PID)");
    }
    if (pidfd_send(fd, SIGUSR1, 0) < 0) {
        return fail("pidfd_send_signal(/proc/PID)");
    }
    return sent("pidfd_send_signal on /proc/PID");
}

// pidfd-open PID [group]: pidfd_open then pidfd_send_signal (with "group":
// PIDFD_SIGNAL_PROCESS_GROUP, the group PID leads).
int case_pidfd_open(int argc, char** argv) {
    const int fd = (int)syscall(SYS_pidfd_open, argc >= 3 ? pid_arg(argv[2]) : 0, 0);
    if (fd < 0) {
        return fail("pidfd_open");
    }
    const unsigned flags = argc >= 4 ? PIDFD_SIGNAL_PROCESS_GROUP : 0;
    if (pidfd_send(fd, SIGUSR1, flags) < 0) {
        return fail("pidfd_send_signal");
    }
    return sent("pidfd_send_signal");
}

typedef struct {
    int slot;          // the descriptor number pidfd_send_signal uses
    int ours, theirs;  // a pidfd of our own child, one of the victim
    atomic_int stop, running;
} Swap;

static void* swapper_main(void* arg) {
    Swap* s = arg;
    atomic_store(&s->running, 1);
    // Both threads yield after each step: on a single free CPU they interleave too.
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        dup2(s->ours, s->slot);
        sched_yield();
        dup2(s->theirs, s->slot);
        sched_yield();
    }
    return NULL;
}

// pidfd-fdswap PID TRIES: pidfd_send_signal(SLOT, SIGUSR1) TRIES times while another thread
// keeps swapping SLOT between a pidfd of our own child (allowed) and one of PID (outside):
// a supervisor that looks the descriptor up before the kernel does is raced.
int case_pidfd_fdswap(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: escape pidfd-fdswap PID TRIES\n");
        return 2;
    }
    const pid_t child = fork();
    if (child == 0) {
        signal(SIGUSR1, SIG_IGN);
        pause();
        _exit(0);
    }
    Swap s = {.slot = 100};
    s.ours = (int)syscall(SYS_pidfd_open, child, 0);
    s.theirs = (int)syscall(SYS_pidfd_open, pid_arg(argv[2]), 0);
    if (child < 0 || s.ours < 0 || s.theirs < 0 || dup2(s.ours, s.slot) < 0) {
        return fail("fork/pidfd_open");
    }
    pthread_t t;
    const int err = pthread_create(&t, NULL, swapper_main, &s);
    if (err != 0) {
        return fail_err("pthread_create", err);
    }
    while (!atomic_load(&s.running)) {
        sched_yield();
    }
    long ok = 0, refused = 0;
    const long tries = strtol(argv[3], NULL, 10);
    for (long i = 0; i < tries; i++) {
        if (pidfd_send(s.slot, SIGUSR1, 0) == 0) {
            ok++;
        } else {
            refused++;
        }
        sched_yield();
    }
    atomic_store(&s.stop, 1);
    pthread_join(t, NULL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    fprintf(stderr, "escape[%d] pidfd-fdswap: %ld tries: %ld sent, %ld refused\n", (int)getpid(),
            tries, ok, refused);
    return 0;
}

// Makes the kernel send SIGUSR1 (F_SETSIG) to the owner of a unix socket when data arrives
// (O_ASYNC); `set_owner` names the owner.
static int sigio(int (*set_owner)(int fd, int target), int target, const char* what) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return fail("socketpair");
    }
    if (set_owner(sv[0], target) < 0) {
        return fail(what);
    }
    if (fcntl(sv[0], F_SETSIG, SIGUSR1) < 0) {
        return fail("fcntl(F_SETSIG)");
    }
    if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_ASYNC) < 0) {
        return fail("fcntl(F_SETFL, O_ASYNC)");
    }
    if (write(sv[1], "x", 1) != 1) {
        return fail("write(socket)");
    }
    return sent(what);
}

static int owner_setown(int fd, int target) {
    return fcntl(fd, F_SETOWN, target);
}
static int owner_ex(int fd, int target, int type) {
    struct f_owner_ex ex = {type, target};
    return fcntl(fd, F_SETOWN_EX, &ex);
}
static int owner_ex_pid(int fd, int target) {
    return owner_ex(fd, target, F_OWNER_PID);
}
static int owner_ex_pgrp(int fd, int target) {
    return owner_ex(fd, target, F_OWNER_PGRP);
}
static int owner_ex_tid(int fd, int target) {
    return owner_ex(fd, target, F_OWNER_TID);
}
static int owner_fiosetown(int fd, int target) {
    return ioctl(fd, FIOSETOWN, &target);
}
static int owner_siocspgrp(int fd, int target) {
    return ioctl(fd, SIOCSPGRP, &target);
}

// fsetown HOW TARGET: SIGIO (as SIGUSR1) delivered to TARGET (a pid, or -PGID for F_SETOWN);
// HOW: setown, ex-pid, ex-pgrp, ex-tid, fiosetown, siocspgrp.
int case_fsetown(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: escape fsetown HOW TARGET\n");
        return 2;
    }
    const int target = pid_arg(argv[3]);
    const char* how = argv[2];
    if (strcmp(how, "setown") == 0) {
        return sigio(owner_setown, target, "fcntl(F_SETOWN)");
    }
    if (strcmp(how, "ex-pid") == 0) {
        return sigio(owner_ex_pid, target, "fcntl(F_SETOWN_EX, F_OWNER_PID)");
    }
    if (strcmp(how, "ex-pgrp") == 0) {
        return sigio(owner_ex_pgrp, target, "fcntl(F_SETOWN_EX, F_OWNER_PGRP)");
    }
    if (strcmp(how, "ex-tid") == 0) {
        return sigio(owner_ex_tid, target, "fcntl(F_SETOWN_EX, F_OWNER_TID)");
    }
    if (strcmp(how, "fiosetown") == 0) {
        return sigio(owner_fiosetown, target, "ioctl(FIOSETOWN)");
    }
    if (strcmp(how, "siocspgrp") == 0) {
        return sigio(owner_siocspgrp, target, "ioctl(SIOCSPGRP)");
    }
    fprintf(stderr, "escape fsetown: unknown HOW %s\n", how);
    return 2;
}
