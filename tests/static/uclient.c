/* A client that tells the truth from inside a container: connect to a Unix socket and say what happened.
 *
 *   uclient PATH [LINE]
 *
 * Prints one line: "connected", "connected reply=<text>" (after sending LINE and reading one reply line, up to
 * 2 s), or "error <ERRNO-NAME> <strerror>" when connect() fails. Exit 0 when connected, 1 otherwise, 2 on usage.
 * Static, so it runs in the busybox test image, which has no libc.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EAGAIN: return "EAGAIN";
    case ENOTSOCK: return "ENOTSOCK";
    case EPROTOTYPE: return "EPROTOTYPE";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EOTHER";
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: uclient PATH [LINE]\n");
        return 2;
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        printf("error ENAMETOOLONG %s\n", strerror(ENAMETOOLONG));
        return 1;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("error %s %s\n", errname(errno), strerror(errno));
        return 1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        printf("error %s %s\n", errname(errno), strerror(errno));
        return 1;
    }
    if (argc == 2) {
        printf("connected\n");
        return 0;
    }
    char line[4096];
    snprintf(line, sizeof line, "%s\n", argv[2]);
    if (write(fd, line, strlen(line)) < 0) {
        printf("error %s %s\n", errname(errno), strerror(errno));
        return 1;
    }
    char reply[4096];
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < sizeof reply - 1 && poll(&p, 1, 2000) > 0) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        if (memchr(reply, '\n', got)) break;
    }
    reply[got] = 0;
    char *nl = strchr(reply, '\n');
    if (nl) *nl = 0;
    printf("connected reply=%s\n", reply);
    return 0;
}
