/* SPDX-License-Identifier: Apache-2.0 */
/* lookup_probe NAME...
 *
 * Calls every name-lookup function the shim hooks for every NAME and prints one line per
 * call (tests/e2e/test_shim.py compares them with what libc gives without the shim):
 *
 *   FUNCTION|NAME|VARIANT|ok ADDR[,ADDR...] [canon=NAME]
 *   FUNCTION|NAME|VARIANT|err CODE
 *
 * FUNCTION: getaddrinfo (VARIANT: unspec, inet, inet6, inet6-v4mapped, numerichost,
 * canonname), gethostbyname (-), gethostbyname2 (inet, inet6), gethostbyname_r (-, small:
 * an 8-byte buffer that must give ERANGE), gethostbyname2_r (inet, inet6). Addresses are
 * printed with inet_ntop, IPv6 as such (a v4-mapped one as ::ffff:a.b.c.d); ADDR lists are in
 * the order returned, duplicates (one per socket type) removed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void print_hostent(const char* fn, const char* name, const char* variant,
                          const struct hostent* h, int err) {
    printf("%s|%s|%s|", fn, name, variant);
    if (h == NULL) {
        printf("err %d\n", err);
        return;
    }
    printf("ok ");
    for (int i = 0; h->h_addr_list[i] != NULL; i++) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(h->h_addrtype, h->h_addr_list[i], text, sizeof text);
        printf("%s%s", i ? "," : "", text);
    }
    printf(" canon=%s len=%d\n", h->h_name ? h->h_name : "(null)", h->h_length);
}

static void probe_gai(const char* name, const char* variant, int family, int flags) {
    struct addrinfo hints = {.ai_family = family, .ai_flags = flags};
    struct addrinfo* res = NULL;
    const int rc = getaddrinfo(name, "443", &hints, &res);
    printf("getaddrinfo|%s|%s|", name, variant);
    if (rc != 0) {
        printf("err %s\n", rc == EAI_NONAME       ? "EAI_NONAME"
                           : rc == EAI_AGAIN      ? "EAI_AGAIN"
                           : rc == EAI_FAIL       ? "EAI_FAIL"
                           : rc == EAI_ADDRFAMILY ? "EAI_ADDRFAMILY"
                           : rc == EAI_NODATA     ? "EAI_NODATA"
                                                  : gai_strerror(rc));
        return;
    }
    printf("ok ");
    char printed[16][INET6_ADDRSTRLEN];
    int n = 0;
    for (struct addrinfo* ai = res; ai != NULL; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void* a = ai->ai_family == AF_INET
                            ? (const void*)&((struct sockaddr_in*)ai->ai_addr)->sin_addr
                            : (const void*)&((struct sockaddr_in6*)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, a, text, sizeof text);
        int dup = 0;
        for (int k = 0; k < n; k++) {
            dup |= strcmp(printed[k], text) == 0;
        }
        if (!dup && n < 16) {
            printf("%s%s", n ? "," : "", text);
            strcpy(printed[n++], text);
        }
    }
    if (flags & AI_CANONNAME) {
        printf(" canon=%s", res->ai_canonname ? res->ai_canonname : "(null)");
    }
    printf("\n");
    freeaddrinfo(res);
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        const char* name = argv[i];
        probe_gai(name, "unspec", AF_UNSPEC, 0);
        probe_gai(name, "inet", AF_INET, 0);
        probe_gai(name, "inet6", AF_INET6, 0);
        probe_gai(name, "inet6-v4mapped", AF_INET6, AI_V4MAPPED);
        probe_gai(name, "numerichost", AF_UNSPEC, AI_NUMERICHOST);
        probe_gai(name, "canonname", AF_INET, AI_CANONNAME);

        struct hostent* h = gethostbyname(name);
        print_hostent("gethostbyname", name, "-", h, h_errno);
        h = gethostbyname2(name, AF_INET);
        print_hostent("gethostbyname2", name, "inet", h, h_errno);
        h = gethostbyname2(name, AF_INET6);
        print_hostent("gethostbyname2", name, "inet6", h, h_errno);

        struct hostent ent, *result = NULL;
        char buf[2048];
        int herr = 0;
        int rc = gethostbyname_r(name, &ent, buf, sizeof buf, &result, &herr);
        print_hostent("gethostbyname_r", name, "-", rc == 0 ? result : NULL, rc ? rc : herr);
        result = NULL;
        rc = gethostbyname_r(name, &ent, buf, 8, &result, &herr);
        printf("gethostbyname_r|%s|small|rc %s result=%s\n", name,
               rc == ERANGE ? "ERANGE"
               : rc == 0    ? "0"
                            : "other",
               result ? "set" : "null");
        rc = gethostbyname2_r(name, AF_INET, &ent, buf, sizeof buf, &result, &herr);
        print_hostent("gethostbyname2_r", name, "inet", rc == 0 ? result : NULL, rc ? rc : herr);
        rc = gethostbyname2_r(name, AF_INET6, &ent, buf, sizeof buf, &result, &herr);
        print_hostent("gethostbyname2_r", name, "inet6", rc == 0 ? result : NULL, rc ? rc : herr);
    }
    return 0;
}
