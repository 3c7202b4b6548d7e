// SPDX-License-Identifier: Apache-2.0
// The escape program's cases against what lies outside the jail but not on the network: the
// user's terminal (TIOCSTI), descriptors inherited from outside (sockets, an io_uring whose
// SQPOLL thread runs outside), the resource limits and scheduling of outside processes, and
// signals delivered to outside processes (process groups, pidfds, SIGIO owners). Signals are
// judged by an `escape victim` outside the jail, limits by the test reading /proc, sockets by
// their listeners (tests/e2e/test_escape_process.py).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

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
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13

static int pid_arg(const char* s) {
    return (int)strtol(s, NULL, 10);
}

// ---- the terminal --------------------------------------------------------------------------

// tiocsti TEXT: pushes TEXT and a newline into the input of our terminal (stdin, else
// /dev/tty), where the user's shell reads it once landjail has exited.
static int case_tiocsti(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape tiocsti TEXT\n");
        return 2;
    }
    int fd = STDIN_FILENO;
    if (!isatty(fd) && (fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0) {
        return fail("open(/dev/tty)");
    }
    const size_t n = strlen(argv[2]);
    for (size_t i = 0; i <= n; i++) {
        const char c = i < n ? argv[2][i] : '\n';
        if (ioctl(fd, TIOCSTI, &c) < 0) {
            return fail("ioctl(TIOCSTI)");
        }
    }
    return sent("TIOCSTI into the terminal");
}

// ---- inherited descriptors -----------------------------------------------------------------

// inherited FD [ADDR PORT]: sends the marker on FD, a socket opened before landjail started;
// with ADDR PORT through sendto (an unconnected datagram socket).
static int case_inherited(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape inherited FD [ADDR PORT]\n");
        return 2;
    }
    const int fd = pid_arg(argv[2]);
    ssize_t n;
    if (argc >= 5) {
        Addr a;
        parse_addr(argv[3], argv[4], &a);
        n = sendto(fd, g_marker, marker_len(), MSG_NOSIGNAL, (struct sockaddr*)&a.ss, a.len);
    } else {
        n = send(fd, g_marker, marker_len(), MSG_NOSIGNAL);
    }
    if (n < 0) {
        return fail(argc >= 5 ? "sendto(inherited fd)" : "send(inherited fd)");
    }
    return sent("on an inherited socket");
}

typedef struct {
    unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe* sqes;
    struct io_uring_cqe* cqes;
} MappedRing;

// The SQPOLL thread reads an SQE's pointers (the address to connect to, the bytes to send)
// in its owner's memory: they point into the ring's SQE array, which both processes map
// (at different addresses); its last two entries hold the data.
#define RING_ENTRIES 8

static int map_ring(int fd, const struct io_uring_params* p, MappedRing* r) {
    size_t sq_size = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    const size_t cq_size = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    sq_size = sq_size > cq_size ? sq_size : cq_size;  // IORING_FEAT_SINGLE_MMAP (5.4)
    uint8_t* sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
    r->sqes = mmap(NULL, p->sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || r->sqes == MAP_FAILED) {
        return fail("mmap(io_uring)");
    }
    r->sq_tail = (unsigned*)(sq + p->sq_off.tail);
    r->sq_mask = (unsigned*)(sq + p->sq_off.ring_mask);
    r->sq_array = (unsigned*)(sq + p->sq_off.array);
    r->sq_flags = (unsigned*)(sq + p->sq_off.flags);
    r->cq_head = (unsigned*)(sq + p->cq_off.head);
    r->cq_tail = (unsigned*)(sq + p->cq_off.tail);
    r->cq_mask = (unsigned*)(sq + p->cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe*)(sq + p->cq_off.cqes);
    return 0;
}

// Submits one SQE to a ring whose SQPOLL thread picks it up, and polls the completion
// queue in memory: no io_uring_enter(2). Returns cqe->res, or -ETIMEDOUT.
static int sqpoll_run(MappedRing* r, const struct io_uring_sqe* sqe) {
    const unsigned tail = *r->sq_tail;
    const unsigned idx = tail & *r->sq_mask;
    r->sqes[idx] = *sqe;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    const unsigned head = *r->cq_head;
    for (int i = 0; i < 5000 && head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); i++) {
        usleep(1000);
    }
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
        return -ETIMEDOUT;
    }
    const int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

// ring-inherited FD PARAMS SQES ADDR PORT: drives an io_uring made outside the jail (by
// `escape sqpoll-parent`) whose SQPOLL thread runs in that outside process: socket, connect
// and send happen there. PARAMS: the ring's io_uring_params in hex; SQES: where its owner
// mapped the SQE array.
static int case_ring_inherited(int argc, char** argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: escape ring-inherited FD PARAMS SQES ADDR PORT\n");
        return 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < sizeof p && argv[3][2 * i] && argv[3][2 * i + 1]; i++) {
        unsigned v = 0;
        sscanf(argv[3] + 2 * i, "%2x", &v);
        ((uint8_t*)&p)[i] = (uint8_t)v;
    }
    Addr a;
    parse_addr(argv[5], argv[6], &a);
    MappedRing r;
    if (map_ring(pid_arg(argv[2]), &p, &r) != 0) {
        return 1;
    }
    const size_t at = (RING_ENTRIES - 2) * sizeof(struct io_uring_sqe);
    uint8_t* mine = (uint8_t*)r.sqes + at;  // the same bytes as `owner`
    const uint64_t owner = strtoull(argv[4], NULL, 16) + at;
    memcpy(mine, &a.ss, a.len);
    memcpy(mine + 64, g_marker, marker_len());
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_SOCKET;
    sqe.fd = a.family;
    sqe.off = SOCK_STREAM;
    const int fd = sqpoll_run(&r, &sqe);  // a descriptor of the ring's owner, outside
    if (fd < 0) {
        return fail_err("IORING_OP_SOCKET", -fd);
    }
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_CONNECT;
    sqe.fd = fd;
    sqe.addr = owner;
    sqe.off = a.len;
    int res = sqpoll_run(&r, &sqe);
    if (res < 0) {
        return fail_err("IORING_OP_CONNECT", -res);
    }
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_SEND;
    sqe.fd = fd;
    sqe.addr = owner + 64;
    sqe.len = (uint32_t)marker_len();
    if ((res = sqpoll_run(&r, &sqe)) < 0) {
        return fail_err("IORING_OP_SEND", -res);
    }
    return sent("through an inherited SQPOLL io_uring");
}

// sqpoll-parent CMD ARGS...: makes an io_uring with an SQPOLL thread (idle for 60 s before it
// sleeps) and maps it, starts CMD with the ring's fd inherited and
// ESCAPE_RING_FD / ESCAPE_RING_PARAMS / ESCAPE_RING_SQES in its environment, and waits for it: the
// ring's thread lives in this process, outside.
static int case_sqpoll_parent(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape sqpoll-parent CMD ARGS...\n");
        return 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 60000;
    const int fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
    if (fd < 0) {
        return fail("io_uring_setup(IORING_SETUP_SQPOLL)");
    }
    MappedRing r;  // as any owner of a ring, it maps it
    if (map_ring(fd, &p, &r) != 0) {
        return 1;
    }
    if (fcntl(fd, F_SETFD, 0) < 0) {  // the ring's descriptor is close-on-exec
        return fail("fcntl(F_SETFD)");
    }
    char hex[2 * sizeof p + 1], num[16];
    for (size_t i = 0; i < sizeof p; i++) {
        snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t*)&p)[i]);
    }
    snprintf(num, sizeof num, "%d", fd);
    setenv("ESCAPE_RING_FD", num, 1);
    char sqes[32];
    snprintf(sqes, sizeof sqes, "%lx", (unsigned long)(uintptr_t)r.sqes);
    setenv("ESCAPE_RING_SQES", sqes, 1);
    setenv("ESCAPE_RING_PARAMS", hex, 1);
    const pid_t child = fork();
    if (child == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    if (child < 0) {
        return fail("fork");
    }
    // A busy owner: the SQPOLL thread goes to sleep when idle, and this process wakes it
    // (IORING_ENTER_SQ_WAKEUP), as a program that keeps using its ring does.
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (__atomic_load_n(r.sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP) {
            syscall(__NR_io_uring_enter, fd, 0, 0, IORING_ENTER_SQ_WAKEUP, NULL, 0);
        }
        usleep(1000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

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
static int case_prlimit(int argc, char** argv) {
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
static int case_sched(int argc, char** argv) {
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
static int case_renice_user(void) {
    if (setpriority(PRIO_USER, 0, 19) < 0) {
        return fail("setpriority(PRIO_USER)");
    }
    return sent("setpriority(PRIO_USER)");
}

// ---- signals to processes outside ----------------------------------------------------------

static long pidfd_send(int fd, int sig, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, NULL, flags);
}

// kill0 [PGID]: joins process group PGID first (setpgid), then kill(0, SIGUSR1): our own
// process group.
static int case_kill0(int argc, char** argv) {
    if (argc >= 3 && setpgid(0, pid_arg(argv[2])) < 0) {
        return fail("setpgid(0, PGID)");
    }
    if (kill(0, SIGUSR1) < 0) {
        return fail("kill(0, SIGUSR1)");
    }
    return sent("kill(0)");
}

// killpg PGID: kill(-PGID, SIGUSR1).
static int case_killpg(int argc, char** argv) {
    if (argc < 3) {
        return 2;
    }
    if (kill(-pid_arg(argv[2]), SIGUSR1) < 0) {
        return fail("kill(-PGID, SIGUSR1)");
    }
    return sent("kill(-PGID)");
}

// pidfd-proc PID: pidfd_send_signal on a /proc/PID directory (which works as a pidfd).
static int case_pidfd_proc(int argc, char** argv) {
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
static int case_pidfd_open(int argc, char** argv) {
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
static int case_pidfd_fdswap(int argc, char** argv) {
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
static int case_fsetown(int argc, char** argv) {
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
