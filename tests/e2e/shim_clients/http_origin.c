/* SPDX-License-Identifier: Apache-2.0 */
/* http_origin [-t THREADS] [--body TEXT]
 *
 * A minimal, fast plain-HTTP origin for tests/bench/shim/run.py (tests/integration/origin.py
 * is Python and would dominate the figures): listens on 127.0.0.1, port 0, prints
 * "127.0.0.1:PORT" on stdout, and answers every request (read up to the blank line) with
 * "200 OK", Content-Length and Connection: close, then closes. THREADS (default 4) threads
 * accept on the same socket. Runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_listen;
static char g_resp[1024];
static size_t g_resp_len;

static void serve(int fd) {
    char buf[8192];
    size_t n = 0;
    for (;;) {
        const ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return;
        }
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            break;
        }
        if (n == sizeof buf - 1) {
            return;
        }
    }
    for (size_t off = 0; off < g_resp_len;) {
        const ssize_t w = send(fd, g_resp + off, g_resp_len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        off += (size_t)w;
    }
}

static void* run(void* arg) {
    (void)arg;
    for (;;) {
        const int fd = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) {
                continue;
            }
            perror("accept");
            exit(1);
        }
        serve(fd);
        close(fd);
    }
    return NULL;
}

int main(int argc, char** argv) {
    int threads = 4;
    const char* body = "hello from origin";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc) {
            body = argv[++i];
        } else {
            fprintf(stderr, "usage: http_origin [-t THREADS] [--body TEXT]\n");
            return 1;
        }
    }
    g_resp_len = (size_t)snprintf(g_resp, sizeof g_resp,
                                  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                  strlen(body), body);
    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(g_listen, (struct sockaddr*)&a, sizeof a) != 0 || listen(g_listen, 1024) != 0 ||
        getsockname(g_listen, (struct sockaddr*)&a, &len) != 0) {
        perror("bind/listen");
        return 1;
    }
    printf("127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);
    pthread_t th;
    for (int i = 1; i < threads; i++) {
        pthread_create(&th, NULL, run, NULL);
    }
    run(NULL);
    return 0;
}
