// SPDX-License-Identifier: Apache-2.0
// connect_bench: the cost of one TCP connect to a loopback listener, for tests/bench/jail/run.py.
//
//   connect_bench [-n COUNT] [-w WARMUP] [ADDR:PORT]
//       socket() + connect() + close() COUNT times (default 20000, after WARMUP = 500 untimed
//       ones) to ADDR:PORT, or, without it, to the proxy named by $HTTP_PROXY
//       (http://127.0.0.1:PORT, as landjail sets it). Each close sends RST (SO_LINGER 0), so
//       no TIME_WAIT sockets pile up over repeated runs. Prints one line:
//         connects N errors E mean_us M median_us P50 p90_us P90 min_us MIN
//       Exit status 0 when every connect succeeded, 1 otherwise, 2 on bad usage.
//   connect_bench --serve
//       listens on 127.0.0.1:0, prints "listening 127.0.0.1:PORT" and accepts and closes
//       connections until killed (the plain baseline's listener).
//   connect_bench --floor continue|getfd[-sync] [-n COUNT] [-w WARMUP] ADDR:PORT
//       the same measurement in a child whose connect() is trapped by a seccomp user
//       notification that this process answers as cheaply as possible: "continue" lets the
//       kernel go on (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the notification round trip alone);
//       "getfd" performs the connect on the child's socket taken with pidfd_getfd (a minimal
//       supervisor doing what landjail's does, without reading or checking the address).
//       The floor under landjail's figure on this host. "-sync" also sets
//       SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6) on the listener.
//
// Built by `make bench` with gcc -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE.

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t lj_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Parses "ADDR:PORT" or "http://ADDR:PORT[/]" (IPv4 only: the proxy listens on 127.0.0.1).
static int lj_parse_addr(const char* text, struct sockaddr_in* sa) {
    const char* s = text;
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    char host[64];
    const char* colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char* end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && strcmp(end, "/") != 0) || port < 1 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

// One socket + connect + close; 0 or the connect's errno.
static int lj_connect_once(const struct sockaddr_in* sa) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int err = 0;
    if (connect(fd, (const struct sockaddr*)sa, sizeof *sa) != 0) {
        err = errno;
    } else {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
    return err;
}

static int lj_cmp_u64(const void* a, const void* b) {
    uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
    return (x > y) - (x < y);
}

static int lj_serve(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr*)&sa, &len) != 0) {
        perror("connect_bench --serve: socket/bind/listen");
        return 1;
    }
    printf("listening 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            close(c);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            perror("connect_bench --serve: accept");
            return 1;
        }
    }
}

static int lj_usage(void) {
    fprintf(stderr,
            "usage: connect_bench [--floor continue|getfd[-sync]] [-n COUNT] [-w WARMUP] "
            "[ADDR:PORT]\n"
            "       connect_bench --serve\n");
    return 2;
}

// The timed loop: prints the result line; returns 0 when every connect succeeded.
static int lj_measure(const struct sockaddr_in* sa, long count, long warmup) {
    for (long i = 0; i < warmup; i++) lj_connect_once(sa);
    uint64_t* ns = calloc((size_t)count, sizeof *ns);
    if (ns == NULL)
        return 1;
    long errors = 0;
    int first_err = 0;
    uint64_t total = 0;
    for (long i = 0; i < count; i++) {
        uint64_t t0 = lj_now_ns();
        int err = lj_connect_once(sa);
        ns[i] = lj_now_ns() - t0;
        total += ns[i];
        if (err != 0) {
            errors++;
            if (first_err == 0)
                first_err = err;
        }
    }
    qsort(ns, (size_t)count, sizeof *ns, lj_cmp_u64);
    printf("connects %ld errors %ld mean_us %.3f median_us %.3f p90_us %.3f min_us %.3f\n", count,
           errors, (double)total / (double)count / 1e3, (double)ns[count / 2] / 1e3,
           (double)ns[count * 9 / 10] / 1e3, (double)ns[0] / 1e3);
    fflush(stdout);
    if (errors)
        fprintf(stderr, "connect_bench: first error: %s\n", strerror(first_err));
    free(ns);
    return errors ? 1 : 0;
}

// ---- --floor: a minimal supervisor ------------------------------------------------------

// Linux 6.6 uapi, newer than the 6.1 headers here.
#define LJ_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#define LJ_USER_NOTIF_FD_SYNC_WAKE_UP (1ULL << 0)

// Child: traps connect() with SECCOMP_RET_USER_NOTIF, hands the listener to the parent over
// `chan`, then measures.
static int lj_floor_child(int chan, const struct sockaddr_in* sa, long count, long warmup) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return 1;
    int listener =
        (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) {
        perror("connect_bench --floor: seccomp");
        return 1;
    }
    char byte = 0, cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &listener, sizeof(int));
    if (sendmsg(chan, &msg, 0) != 1)
        return 1;
    close(listener);
    close(chan);
    return lj_measure(sa, count, warmup);
}

static int lj_recv_fd(int chan) {
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (recvmsg(chan, &msg, 0) != 1)
        return -1;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

// Parent: answers every notification until the child is gone.
static void lj_floor_supervise(int listener, pid_t child, int getfd, int sync) {
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (sync) {
        // Linux 6.6: wake the supervisor (and then the caller) on the current CPU.
        unsigned long long flags = LJ_USER_NOTIF_FD_SYNC_WAKE_UP;
        if (ioctl(listener, LJ_IOCTL_NOTIF_SET_FLAGS, flags) != 0) {
            perror("connect_bench --floor: SECCOMP_IOCTL_NOTIF_SET_FLAGS");
        }
    }
    for (;;) {
        struct pollfd p = {.fd = listener, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return;
        if (p.revents & (POLLHUP | POLLERR))
            return;
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0)
            continue;
        struct seccomp_notif_resp resp = {.id = req.id};
        if (!getfd) {
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        } else {
            struct sockaddr_in sa = {0};  // the bench connects to one address: no need to read it
            int sock = (int)syscall(SYS_pidfd_getfd, pidfd, (int)req.data.args[0], 0);
            if (sock < 0 || lj_parse_addr(getenv("LJ_FLOOR_ADDR"), &sa) != 0) {
                resp.error = -EBADF;
            } else if (connect(sock, (struct sockaddr*)&sa, sizeof sa) != 0) {
                resp.error = -errno;
            }
            if (sock >= 0)
                close(sock);
        }
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

static int lj_floor(const char* mode, const struct sockaddr_in* sa, const char* target, long count,
                    long warmup) {
    int getfd = strncmp(mode, "getfd", 5) == 0;
    int sync = strstr(mode, "-sync") != NULL;
    if (strcmp(mode, "getfd") != 0 && strcmp(mode, "continue") != 0 &&
        strcmp(mode, "getfd-sync") != 0 && strcmp(mode, "continue-sync") != 0)
        return lj_usage();
    setenv("LJ_FLOOR_ADDR", target, 1);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(sv[0]);
        _exit(lj_floor_child(sv[1], sa, count, warmup));
    }
    close(sv[1]);
    int listener = lj_recv_fd(sv[0]);
    close(sv[0]);
    if (listener < 0) {
        fprintf(stderr, "connect_bench --floor: no listener from the child\n");
        kill(child, SIGKILL);
    } else {
        lj_floor_supervise(listener, child, getfd, sync);
        close(listener);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char** argv) {
    long count = 20000, warmup = 500;
    const char* target = NULL;
    const char* floor_mode = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0)
            return lj_serve();
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            count = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            warmup = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--floor") == 0 && i + 1 < argc) {
            floor_mode = argv[++i];
        } else if (argv[i][0] != '-' && target == NULL) {
            target = argv[i];
        } else {
            return lj_usage();
        }
    }
    if (target == NULL)
        target = getenv("HTTP_PROXY");
    struct sockaddr_in sa;
    if (count < 1 || warmup < 0 || target == NULL || lj_parse_addr(target, &sa) != 0) {
        fprintf(stderr, "connect_bench: need ADDR:PORT or HTTP_PROXY=http://ADDR:PORT (got %s)\n",
                target ? target : "neither");
        return lj_usage();
    }
    if (floor_mode != NULL)
        return lj_floor(floor_mode, &sa, target, count, warmup);
    return lj_measure(&sa, count, warmup);
}
