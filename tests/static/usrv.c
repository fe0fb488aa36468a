/* A unix-socket server for inside a busybox container (busybox cannot listen on one): bind argv[1], listen(16),
   accept and close forever. Static, so it runs in an image with no libc. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void leave(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    struct sockaddr_un addr;
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    signal(SIGTERM, leave);  /* PID 1 in a container ignores SIGTERM unless it handles it */
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    unlink(argv[1]);
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 3; }
    chmod(argv[1], 0666);
    if (listen(server, 16) < 0) { perror("listen"); return 4; }
    for (;;) { int c = accept(server, 0, 0); if (c >= 0) close(c); }
}
