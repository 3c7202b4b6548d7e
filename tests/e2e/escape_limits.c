// SPDX-License-Identifier: Apache-2.0
// The escape program's cases against the resource limits and scheduling of processes outside
// the jail (prlimit, nice, SCHED_IDLE, CPU affinity, I/O priority, PRIO_USER), judged by the
// test reading /proc (tests/e2e/test_escape_process.py).
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "escape.h"

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13

// ---- resource limits and scheduling of another process -------------------------------------

// The landjail-proxy whose parent is one of our ancestors (the landjail that jails us).
static int our_proxy(void) {
    int ancestors[64], n = 0;
    for (int pid = getppid(); pid > 1 && n < 64;) {
        char comm[16];
        ancestors[n++] = pid;
        if (read_stat(pid, comm, &pid) != 0) {
            break;
        }
    }
    DIR* d = opendir("/proc");
    if (!d) {
        return -1;
    }
    int found = -1;
    for (struct dirent* e; found < 0 && (e = readdir(d));) {
        const int pid = atoi(e->d_name);
        char comm[16];
        int parent = 0;
        if (pid <= 0 || read_stat(pid, comm, &parent) != 0 || strcmp(comm, "landjail-proxy") != 0) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            found = parent == ancestors[i] ? pid : found;
        }
    }
    closedir(d);
    return found;
}

// The target: a pid, or "proxy": the landjail-proxy of the landjail that runs us.
static int target_pid(int argc, char** argv) {
    if (argc >= 3 && strcmp(argv[2], "proxy") == 0) {
        return our_proxy();
    }
    return argc >= 3 ? pid_arg(argv[2]) : -1;
}

// prlimit PID|proxy: lowers RLIMIT_NOFILE (the proxy could no longer accept) and
// RLIMIT_FSIZE (its audit writes would fail) of another process.
int case_prlimit(int argc, char** argv) {
    const int pid = target_pid(argc, argv);
    if (pid <= 0) {
        return fail_err("the target process", ESRCH);
    }
    const struct rlimit nofile = {8, 8}, fsize = {1, 1};
    if (prlimit(pid, RLIMIT_NOFILE, &nofile, NULL) < 0) {
        return fail("prlimit(RLIMIT_NOFILE)");
    }
    if (prlimit(pid, RLIMIT_FSIZE, &fsize, NULL) < 0) {
        return fail("prlimit(RLIMIT_FSIZE)");
    }
    return sent("prlimit on another process");
}

// sched PID|proxy: niceness 19, SCHED_IDLE, one CPU and idle I/O priority for
// another process.
int case_sched(int argc, char** argv) {
    const int pid = target_pid(argc, argv);
    if (pid <= 0) {
        return fail_err("the target process", ESRCH);
    }
    if (setpriority(PRIO_PROCESS, (id_t)pid, 19) < 0) {
        return fail("setpriority(PRIO_PROCESS)");
    }
    const struct sched_param none = {0};
    if (sched_setscheduler(pid, SCHED_IDLE, &none) < 0) {
        return fail("sched_setscheduler(SCHED_IDLE)");
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(pid, sizeof one, &one) < 0) {
        return fail("sched_setaffinity");
    }
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, pid, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) <
        0) {
        return fail("ioprio_set");
    }
    return sent("scheduling of another process");
}

// renice-user: niceness 19 for every process of our user (PRIO_USER, who 0).
int case_renice_user(void) {
    if (setpriority(PRIO_USER, 0, 19) < 0) {
        return fail("setpriority(PRIO_USER)");
    }
    return sent("setpriority(PRIO_USER)");
}
