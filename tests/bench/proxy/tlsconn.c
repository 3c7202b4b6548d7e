// SPDX-License-Identifier: Apache-2.0
// tlsconn: new-TLS-connections-per-second load generator for the proxy benchmark.
//
// Each of THREADS threads loops until DURATION seconds have passed (or COUNT connections per
// thread are done): TCP connect, optionally "CONNECT HOST:PORT" through an HTTP proxy, a full
// TLS handshake (SNI HOST, peer verified against CAFILE, no session reuse), one
// "GET PATH HTTP/1.1" whose response is read to its Content-Length, then close.
//
//   tlsconn ADDR:PORT HOST:PORT CAFILE PATH THREADS DURATION COUNT [proxy|direct]
//
// Prints one line: "ok N fail M seconds S rate R" (R = completed connections per second).
// Exit status 0 when at least one connection completed, 1 otherwise, 2 on a usage error.
// Loopback only: ADDR must be 127.0.0.1.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in lj_target;
static const char* lj_host;       // "origin.test"
static const char* lj_authority;  // "origin.test:PORT"
static const char* lj_path;
static int lj_via_proxy;
static double lj_deadline;
static long lj_count;
static SSL_CTX* lj_ctx;
static atomic_long lj_ok;
static atomic_long lj_fail;
static atomic_int lj_errors_printed;

static double lj_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lj_report(const char* what) {
    if (atomic_fetch_add(&lj_errors_printed, 1) < 5) {
        fprintf(stderr, "tlsconn: %s\n", what);
        ERR_print_errors_fp(stderr);
    }
    ERR_clear_error();
}

static int lj_send_all(int fd, const char* buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

// Reads the proxy's answer to CONNECT up to the blank line; 0 when it is a 200.
static int lj_connect_tunnel(int fd) {
    char req[512];
    int len = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", lj_authority,
                       lj_authority);
    if (lj_send_all(fd, req, (size_t)len) != 0) {
        return -1;
    }
    char buf[2048];
    size_t got = 0;
    // Byte at a time so that no TLS bytes are consumed; the answer is short.
    while (got + 1 < sizeof buf) {
        ssize_t n = recv(fd, buf + got, 1, 0);
        if (n <= 0) {
            return -1;
        }
        got++;
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0) {
            buf[got] = '\0';
            return strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0
                       ? 0
                       : -1;
        }
    }
    return -1;
}

// Reads one response over TLS: headers, then Content-Length bytes of body.
static int lj_read_response(SSL* ssl) {
    char buf[16384];
    size_t got = 0;
    long body = -1;
    size_t header_end = 0;
    for (;;) {
        if (got == sizeof buf) {
            return -1;
        }
        int n = SSL_read(ssl, buf + got, (int)(sizeof buf - got));
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
        if (header_end == 0) {
            char* end = memmem(buf, got, "\r\n\r\n", 4);
            if (end == NULL) {
                continue;
            }
            header_end = (size_t)(end - buf) + 4;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
                return -1;
            }
            char* cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl == NULL || cl > end) {
                return -1;
            }
            body = strtol(cl + 17, NULL, 10);
        }
        if (got >= header_end + (size_t)body) {
            return 0;
        }
    }
}

static int lj_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lj_report("socket failed");
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = -1;
    SSL* ssl = NULL;
    if (connect(fd, (struct sockaddr*)&lj_target, sizeof lj_target) != 0) {
        lj_report("connect failed");
        goto out;
    }
    if (lj_via_proxy && lj_connect_tunnel(fd) != 0) {
        lj_report("CONNECT was not answered with 200");
        goto out;
    }
    ssl = SSL_new(lj_ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, lj_host);
    SSL_set1_host(ssl, lj_host);
    if (SSL_connect(ssl) != 1) {
        lj_report("TLS handshake failed");
        goto out;
    }
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                       lj_path, lj_authority);
    if (SSL_write(ssl, req, len) != len || lj_read_response(ssl) != 0) {
        lj_report("request over TLS failed");
        goto out;
    }
    SSL_shutdown(ssl);  // sends close_notify; does not wait for the peer's
    rc = 0;
out:
    SSL_free(ssl);
    close(fd);
    return rc;
}

static void* lj_worker(void* arg) {
    (void)arg;
    for (long i = 0; i < lj_count && lj_now() < lj_deadline; i++) {
        if (lj_one() == 0) {
            atomic_fetch_add(&lj_ok, 1);
        } else {
            atomic_fetch_add(&lj_fail, 1);
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 8 || argc > 9) {
        fprintf(stderr,
                "usage: tlsconn ADDR:PORT HOST:PORT CAFILE PATH THREADS DURATION COUNT "
                "[proxy|direct]\n");
        return 2;
    }
    char addr[64];
    const char* colon = strrchr(argv[1], ':');
    if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof addr) {
        fprintf(stderr, "tlsconn: bad ADDR:PORT '%s'\n", argv[1]);
        return 2;
    }
    memcpy(addr, argv[1], (size_t)(colon - argv[1]));
    addr[colon - argv[1]] = '\0';
    lj_target.sin_family = AF_INET;
    lj_target.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, addr, &lj_target.sin_addr) != 1 || strcmp(addr, "127.0.0.1") != 0) {
        fprintf(stderr, "tlsconn: ADDR must be 127.0.0.1\n");
        return 2;
    }
    static char host[256];
    lj_authority = argv[2];
    snprintf(host, sizeof host, "%s", argv[2]);
    char* hc = strrchr(host, ':');
    if (hc != NULL) {
        *hc = '\0';
    }
    lj_host = host;
    lj_path = argv[4];
    int threads = atoi(argv[5]);
    double duration = atof(argv[6]);
    lj_count = atol(argv[7]);
    lj_via_proxy = argc < 9 || strcmp(argv[8], "direct") != 0;
    if (threads < 1 || threads > 64 || duration <= 0 || duration > 120 || lj_count < 1) {
        fprintf(stderr, "tlsconn: THREADS 1..64, DURATION 0..120 s, COUNT >= 1\n");
        return 2;
    }

    lj_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(lj_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(lj_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(lj_ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_load_verify_locations(lj_ctx, argv[3], NULL) != 1) {
        fprintf(stderr, "tlsconn: cannot load CA file %s\n", argv[3]);
        ERR_print_errors_fp(stderr);
        return 2;
    }

    const double start = lj_now();
    lj_deadline = start + duration;
    pthread_t tid[64];
    for (int i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, lj_worker, NULL);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    const double secs = lj_now() - start;
    const long ok = atomic_load(&lj_ok);
    printf("ok %ld fail %ld seconds %.3f rate %.1f\n", ok, atomic_load(&lj_fail), secs,
           (double)ok / secs);
    SSL_CTX_free(lj_ctx);
    return ok > 0 ? 0 : 1;
}
