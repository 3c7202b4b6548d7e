/* SPDX-License-Identifier: Apache-2.0 */
/* threads_connect [-t THREADS] [-n PER_THREAD] [--proxy http://IP:PORT] [--expect TEXT]
 *                 [--warmup N] HOST PORT [PATH]
 *
 * Many short connections from many threads (tests/e2e/test_shim.py, tests/bench/shim/run.py).
 * Each connection: getaddrinfo(HOST, PORT) (every time, from every thread: the placeholder
 * table under concurrency), socket, blocking connect, one plain HTTP/1.1 GET of PATH with
 * Connection: close, the response read to EOF, close. The response must have status 200 and
 * contain TEXT (default "hello from origin").
 *   --proxy URL   the same client using the proxy explicitly, as an HTTPS_PROXY-aware program
 *                 does: connect to the proxy's literal address (no lookup), send
 *                 "CONNECT HOST:PORT", read the 200, then the same request in the tunnel.
 *   --warmup N    N untimed connections (on one thread) first.
 * Output: "ok N fail M" then "setup_us ..." (socket + lookup + connect, and with --proxy the
 * CONNECT exchange: until the tunnel is ready), "total_us ..." (the whole request) as
 * "mean M median M p90 P min M", "wall_s S rate R" (connections per second over all
 * threads), and "error ..." for the first failures. Exit 0 only when every connection
 * succeeded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char* g_host;
static const char* g_port;
static const char* g_path = "/";
static const char* g_expect = "hello from origin";
static int g_per_thread = 125;
static int g_use_proxy;
static struct sockaddr_storage g_proxy;
static socklen_t g_proxy_len;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_errors_shown;

struct worker {
    pthread_t th;
    int ok, fail;
    double* setup_us;
    double* total_us;
    int count;
};

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void report(const char* what, int err) {
    pthread_mutex_lock(&g_lock);
    if (g_errors_shown < 10) {
        printf("error %s: %s\n", what, err ? strerror(err) : "");
        g_errors_shown++;
    }
    pthread_mutex_unlock(&g_lock);
}

static int send_all(int fd, const char* buf, size_t len) {
    while (len > 0) {
        const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the proxy's CONNECT reply up to the blank line; 0 when it is a 200. Nothing of the
 * tunnel can follow it yet: the origin speaks only after the request. */
static int read_connect_reply(int fd) {
    char buf[2048];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        const ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            int status = 0;
            return sscanf(buf, "HTTP/1.%*d %d", &status) == 1 && status == 200 ? 0 : -1;
        }
    }
    return -1;
}

/* One connection; 0 on success. */
static int one(double* setup_us, double* total_us) {
    const double t0 = now_us();
    int fd;
    if (g_use_proxy) {
        fd = socket(g_proxy.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            report("socket", errno);
            return -1;
        }
        if (connect(fd, (const struct sockaddr*)&g_proxy, g_proxy_len) != 0) {
            report("connect to the proxy", errno);
            close(fd);
            return -1;
        }
        char req[600];
        const int n = snprintf(req, sizeof req, "CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n",
                               g_host, g_port, g_host, g_port);
        if (send_all(fd, req, (size_t)n) != 0 || read_connect_reply(fd) != 0) {
            report("CONNECT", errno);
            close(fd);
            return -1;
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo* res = NULL;
        const int g = getaddrinfo(g_host, g_port, &hints, &res);
        if (g != 0) {
            pthread_mutex_lock(&g_lock);
            if (g_errors_shown++ < 10) {
                printf("error getaddrinfo: %s\n", gai_strerror(g));
            }
            pthread_mutex_unlock(&g_lock);
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            report("socket", errno);
            freeaddrinfo(res);
            return -1;
        }
        if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
            report("connect", errno);
            freeaddrinfo(res);
            close(fd);
            return -1;
        }
        freeaddrinfo(res);
    }
    const double t1 = now_us();
    char req[1024];
    const int n = snprintf(req, sizeof req,
                           "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: threads_connect\r\n"
                           "Connection: close\r\n\r\n",
                           g_path, g_host);
    if (send_all(fd, req, (size_t)n) != 0) {
        report("send", errno);
        close(fd);
        return -1;
    }
    char resp[8192];
    size_t got = 0;
    for (;;) {
        const ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            report("recv", errno);
            close(fd);
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
        if (got == sizeof resp - 1) {
            break;
        }
    }
    close(fd);
    const double t2 = now_us();
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || status != 200 ||
        strstr(resp, g_expect) == NULL) {
        pthread_mutex_lock(&g_lock);
        if (g_errors_shown++ < 10) {
            printf("error response: %.120s\n", resp);
        }
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    *setup_us = t1 - t0;
    *total_us = t2 - t0;
    return 0;
}

static void* run(void* p) {
    struct worker* w = p;
    for (int i = 0; i < g_per_thread; i++) {
        double s = 0, t = 0;
        if (one(&s, &t) == 0) {
            w->setup_us[w->count] = s;
            w->total_us[w->count] = t;
            w->count++;
            w->ok++;
        } else {
            w->fail++;
        }
    }
    return NULL;
}

static int cmp(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static void stats(const char* name, double* v, int n) {
    if (n == 0) {
        printf("%s none\n", name);
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i];
    }
    printf("%s mean %.1f median %.1f p90 %.1f min %.1f\n", name, sum / n, v[n / 2],
           v[(int)((n - 1) * 0.9 + 0.5)], v[0]);
}

static int parse_proxy(const char* url) {
    const char* p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    char host[64];
    const char* colon = strrchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof host) {
        return -1;
    }
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    const int port = atoi(colon + 1);
    char* h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    memset(&g_proxy, 0, sizeof g_proxy);
    struct sockaddr_in* in = (struct sockaddr_in*)&g_proxy;
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)&g_proxy;
    if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        g_proxy_len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        g_proxy_len = sizeof *in6;
        return 0;
    }
    return -1;
}

int main(int argc, char** argv) {
    int threads = 8, warmup = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            g_per_thread = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            warmup = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            g_expect = argv[++i];
        } else if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc) {
            if (parse_proxy(argv[++i]) != 0) {
                fprintf(stderr, "bad proxy URL %s\n", argv[i]);
                return 1;
            }
            g_use_proxy = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (argc - i < 2 || threads < 1 || threads > 256 || g_per_thread < 1) {
        fprintf(stderr,
                "usage: threads_connect [-t THREADS] [-n PER_THREAD] [--proxy URL] "
                "[--expect TEXT] [--warmup N] HOST PORT [PATH]\n");
        return 1;
    }
    g_host = argv[i];
    g_port = argv[i + 1];
    if (argc - i > 2) {
        g_path = argv[i + 2];
    }
    for (int k = 0; k < warmup; k++) {
        double s, t;
        if (one(&s, &t) != 0) {
            printf("warm-up connection %d failed\n", k);
            return 1;
        }
    }
    struct worker* w = calloc((size_t)threads, sizeof *w);
    for (int k = 0; k < threads; k++) {
        w[k].setup_us = calloc((size_t)g_per_thread, sizeof(double));
        w[k].total_us = calloc((size_t)g_per_thread, sizeof(double));
    }
    const double t0 = now_us();
    for (int k = 0; k < threads; k++) {
        if (pthread_create(&w[k].th, NULL, run, &w[k]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    int ok = 0, bad = 0, n = 0;
    for (int k = 0; k < threads; k++) {
        pthread_join(w[k].th, NULL);
        ok += w[k].ok;
        bad += w[k].fail;
    }
    const double wall = (now_us() - t0) / 1e6;
    double* setup = calloc((size_t)ok + 1, sizeof(double));
    double* total = calloc((size_t)ok + 1, sizeof(double));
    for (int k = 0; k < threads; k++) {
        memcpy(setup + n, w[k].setup_us, (size_t)w[k].count * sizeof(double));
        memcpy(total + n, w[k].total_us, (size_t)w[k].count * sizeof(double));
        n += w[k].count;
    }
    printf("ok %d fail %d\n", ok, bad);
    stats("setup_us", setup, n);
    stats("total_us", total, n);
    printf("wall_s %.3f rate %.1f\n", wall, wall > 0 ? ok / wall : 0.0);
    return bad == 0 ? 0 : 1;
}
