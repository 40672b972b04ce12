/* LD_PRELOAD shim for lab exits: tor ignores OutboundBindAddress toward loopback targets, so
 * this binds every not-yet-bound IPv4 TCP socket to $LAB_BIND_ADDR right before connect().
 * Each exit then shows its own 127.0.0.x to the target, like a distinct exit IP on the real
 * Tor network. Without the variable (or with a bad one) connect() is left untouched. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static struct in_addr bind_addr;
static int have_bind_addr;

__attribute__((constructor)) static void shim_init(void) {
    const char *text = getenv("LAB_BIND_ADDR");
    real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    have_bind_addr = text != NULL && inet_pton(AF_INET, text, &bind_addr) == 1;
}

static int unbound_tcp4(int fd) {
    int type = 0;
    socklen_t type_len = sizeof type;
    struct sockaddr_in local;
    socklen_t local_len = sizeof local;
    memset(&local, 0, sizeof local);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM &&
           getsockname(fd, (struct sockaddr *)&local, &local_len) == 0 &&
           local.sin_family == AF_INET && local.sin_port == 0 &&
           local.sin_addr.s_addr == htonl(INADDR_ANY);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    if (have_bind_addr && addr != NULL && addr->sa_family == AF_INET && unbound_tcp4(fd)) {
        struct sockaddr_in source;
        int saved_errno = errno;
        memset(&source, 0, sizeof source);
        source.sin_family = AF_INET;
        source.sin_addr = bind_addr;
        /* On failure the kernel picks the source as usual; the target then sees 127.0.0.1. */
        (void)bind(fd, (struct sockaddr *)&source, sizeof source);
        errno = saved_errno;
    }
    return real_connect(fd, addr, len);
}
