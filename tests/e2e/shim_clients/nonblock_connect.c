/* SPDX-License-Identifier: Apache-2.0 */
/* nonblock_connect [--blocking] [--again] HOST PORT [PATH]
 *
 * A libc client of the kind the shim exists for (tests/e2e/test_shim.py): getaddrinfo(HOST),
 * then a TCP connect and one plain HTTP/1.1 GET of PATH (default /) with Connection: close,
 * reading the response to EOF.
 *   default      non-blocking: socket(SOCK_NONBLOCK) with O_APPEND also set (so "flags
 *                restored exactly" is more than O_NONBLOCK), connect() must return -1/EINPROGRESS
 *                (or 0), then poll(POLLOUT) and getsockopt(SO_ERROR); all I/O non-blocking with
 *                poll.
 *   --blocking   a blocking socket: connect() must return 0 and leave errno as it was (set to
 *                EXDEV before the call).
 *   --again      after the non-blocking connect has completed, call connect() again with the
 *                same address, as Ruby's connect_nonblock and other event loops do to learn the
 *                outcome: a connected socket must answer EISCONN (or 0) and the stream must
 *                stay intact.
 * Prints one "key=value" line per step (address, connect, flags, poll, so_error, again,
 * status, body) and exits 0 when the request got an HTTP status line, 2 when the connect was
 * refused (ECONNREFUSED from connect() or SO_ERROR: the line "refused=WHERE" says which),
 * 1 on any other failure or broken expectation ("error=..." says what). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 20000

static int fail(const char* what) {
    printf("error=%s\n", what);
    fflush(stdout);
    return 1;
}

static const char* errname(int e) {
    switch (e) {
        case 0:
            return "0";
        case EINPROGRESS:
            return "EINPROGRESS";
        case EISCONN:
            return "EISCONN";
        case EALREADY:
            return "EALREADY";
        case ECONNREFUSED:
            return "ECONNREFUSED";
        case EACCES:
            return "EACCES";
        case EPERM:
            return "EPERM";
        case EXDEV:
            return "EXDEV";
        case EHOSTUNREACH:
            return "EHOSTUNREACH";
        case ENETUNREACH:
            return "ENETUNREACH";
        case ETIMEDOUT:
            return "ETIMEDOUT";
        case EAGAIN:
            return "EAGAIN";
        case ENOSYS:
            return "ENOSYS";
        default:
            return strerror(e);
    }
}

static int wait_for(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&p, 1, TIMEOUT_MS);
    } while (rc < 0 && errno == EINTR);
    return rc == 1 ? p.revents : -1;
}

int main(int argc, char** argv) {
    int blocking = 0, again = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--blocking") == 0) {
            blocking = 1;
        } else if (strcmp(argv[i], "--again") == 0) {
            again = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: nonblock_connect [--blocking] [--again] HOST PORT [PATH]\n");
        return 1;
    }
    const char* host = argv[i];
    const char* port = argv[i + 1];
    const char* path = argc - i > 2 ? argv[i + 2] : "/";

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo* res = NULL;
    const int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        printf("error=getaddrinfo %s\n", gai_strerror(g));
        return 1;
    }
    char text[INET6_ADDRSTRLEN] = "?";
    const void* a = res->ai_family == AF_INET
                        ? (const void*)&((struct sockaddr_in*)res->ai_addr)->sin_addr
                        : (const void*)&((struct sockaddr_in6*)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, a, text, sizeof text);
    printf("address=%s\n", text);

    const int fd = socket(res->ai_family, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        return fail("socket");
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND) != 0) {
        return fail("F_SETFL O_APPEND");
    }
    const int before = fcntl(fd, F_GETFL);
    errno = EXDEV;
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    const int err = errno;
    const int after = fcntl(fd, F_GETFL);
    printf("connect rc=%d errno=%s\n", rc, rc == 0 ? errname(err) : errname(err));
    printf("flags before=%#x after=%#x\n", (unsigned)before, (unsigned)after);
    if (rc < 0 && err == ECONNREFUSED) {
        printf("refused=connect\n");
        return 2;
    }
    if (before != after) {
        return fail("flags changed by connect");
    }
    if (blocking) {
        if (rc != 0) {
            return fail("blocking connect failed");
        }
        if (err != EXDEV) {
            return fail("errno changed by a successful connect");
        }
    } else {
        if (rc < 0 && err != EINPROGRESS) {
            return fail("non-blocking connect failed");
        }
        const int ev = wait_for(fd, POLLOUT);
        printf("poll revents=%#x\n", (unsigned)(ev < 0 ? 0 : ev));
        if (ev < 0 || !(ev & POLLOUT)) {
            return fail("poll(POLLOUT)");
        }
        int so_error = -1;
        socklen_t sl = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) != 0) {
            return fail("getsockopt(SO_ERROR)");
        }
        printf("so_error=%s\n", errname(so_error));
        if (so_error == ECONNREFUSED) {
            printf("refused=so_error\n");
            return 2;
        }
        if (so_error != 0) {
            return fail("SO_ERROR");
        }
        if (again) {
            errno = 0;
            rc = connect(fd, res->ai_addr, res->ai_addrlen);
            printf("again rc=%d errno=%s\n", rc, rc == 0 ? "0" : errname(errno));
            if (rc < 0 && errno != EISCONN) {
                return fail("connect() on a connected socket");
            }
        }
    }
    freeaddrinfo(res);

    char req[1024];
    const int n = snprintf(req, sizeof req,
                           "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nonblock_connect\r\n"
                           "Connection: close\r\n\r\n",
                           path, host);
    for (int off = 0; off < n;) {
        const ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLOUT) < 0) {
                return fail("poll before send");
            }
            continue;
        }
        if (w <= 0) {
            return fail("send");
        }
        off += (int)w;
    }
    static char resp[1 << 20];
    size_t got = 0;
    for (;;) {
        const ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLIN) < 0) {
                return fail("poll before recv (timeout)");
            }
            continue;
        }
        if (r < 0) {
            return fail("recv");
        }
        if (r == 0 || got + (size_t)r >= sizeof resp - 1) {
            got += (size_t)(r > 0 ? r : 0);
            break;
        }
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        printf("response=%.200s\n", resp);
        return fail("no HTTP status line");
    }
    const char* body = strstr(resp, "\r\n\r\n");
    printf("status=%d\n", status);
    printf("body=%s\n", body ? body + 4 : "");
    return 0;
}
