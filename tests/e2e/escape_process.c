// SPDX-License-Identifier: Apache-2.0
// The dispatch of the escape program's cases against what lies outside the jail but not on
// the network: the user's terminal and descriptors inherited from outside (sockets, an
// io_uring whose SQPOLL thread runs outside) in escape_inherited.c, the resource limits and
// scheduling of outside processes in escape_limits.c, and signals delivered to outside
// processes (process groups, pidfds, SIGIO owners) in escape_signals.c. Signals are judged by
// an `escape victim` outside the jail, limits by the test reading /proc, sockets by their
// listeners (tests/e2e/test_escape_process.py).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

int pid_arg(const char* s) {
    return (int)strtol(s, NULL, 10);
}

// ---- dispatch ------------------------------------------------------------------------------

int process_case(int argc, char** argv) {
    const char* c = argv[1];
    if (strcmp(c, "tiocsti") == 0) {
        return case_tiocsti(argc, argv);
    }
    if (strcmp(c, "inherited") == 0) {
        return case_inherited(argc, argv);
    }
    if (strcmp(c, "ring-inherited") == 0) {
        return case_ring_inherited(argc, argv);
    }
    if (strcmp(c, "sqpoll-parent") == 0) {
        return case_sqpoll_parent(argc, argv);
    }
    if (strcmp(c, "prlimit") == 0) {
        return case_prlimit(argc, argv);
    }
    if (strcmp(c, "sched") == 0) {
        return case_sched(argc, argv);
    }
    if (strcmp(c, "renice-user") == 0) {
        return case_renice_user();
    }
    if (strcmp(c, "kill0") == 0) {
        return case_kill0(argc, argv);
    }
    if (strcmp(c, "killpg") == 0) {
        return case_killpg(argc, argv);
    }
    if (strcmp(c, "pidfd-proc") == 0) {
        return case_pidfd_proc(argc, argv);
    }
    if (strcmp(c, "pidfd-open") == 0) {
        return case_pidfd_open(argc, argv);
    }
    if (strcmp(c, "pidfd-fdswap") == 0) {
        return case_pidfd_fdswap(argc, argv);
    }
    if (strcmp(c, "fsetown") == 0) {
        return case_fsetown(argc, argv);
    }
    return -1;
}

void process_usage(void) {
    fprintf(
        stderr,
        "  tiocsti TEXT                   push TEXT and a newline into our terminal's input\n"
        "  inherited FD [ADDR PORT]       send on a socket inherited from outside\n"
        "  sqpoll-parent CMD ARGS...      (outside) run CMD with an SQPOLL io_uring inherited\n"
        "  ring-inherited FD PARAMS ADDR PORT\n"
        "                                 TCP through that ring, without io_uring_enter\n"
        "  prlimit PID|proxy              lower RLIMIT_NOFILE/FSIZE of another process (proxy:\n"
        "                                 the landjail-proxy of the landjail that runs us)\n"
        "  sched PID|proxy                nice 19, SCHED_IDLE, one CPU, idle I/O for it\n"
        "  renice-user                    setpriority(PRIO_USER, 0, 19)\n"
        "  kill0 [PGID]                   (join PGID, then) kill(0, SIGUSR1)\n"
        "  killpg PGID                    kill(-PGID, SIGUSR1)\n"
        "  pidfd-proc PID                 pidfd_send_signal on open(/proc/PID)\n"
        "  pidfd-open PID [group]         pidfd_open + pidfd_send_signal (process group)\n"
        "  pidfd-fdswap PID TRIES         race the pidfd's descriptor against the check\n"
        "  fsetown HOW TARGET             SIGIO as SIGUSR1 to TARGET; HOW: setown, ex-pid,\n"
        "                                 ex-pgrp, ex-tid, fiosetown, siocspgrp\n");
}
