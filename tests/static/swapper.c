/* What a hostile container does to race a fix: exchange two names atomically with renameat2(RENAME_EXCHANGE).
 *
 *   swapper once A B    exchange A and B once; print "swapped" (exit 0) or "error <errno>" (exit 1)
 *   swapper loop A B [USEC]
 *                       exchange them over and over until killed, pausing USEC microseconds after each exchange
 *                       (default 0); failures (one name briefly gone) are retried.
 *                       Prints nothing (a detached exec may have no reader: a write could end it with SIGPIPE).
 *
 * A and B may be a directory and a symlink (an ancestor swapped for a link), or two sockets (a stale one and a
 * live one). Static, so it runs in the busybox test image, which has no libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int exchange(const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5 || (strcmp(argv[1], "once") != 0 && strcmp(argv[1], "loop") != 0)) {
        fprintf(stderr, "usage: swapper once A B | swapper loop A B [USEC]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(argv[1], "once") == 0) {
        if (exchange(argv[2], argv[3]) != 0) {
            printf("error %s\n", strerror(errno));
            return 1;
        }
        printf("swapped\n");
        return 0;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    useconds_t pause = argc == 5 ? (useconds_t)atol(argv[4]) : 0;
    while (!stop) {
        (void)exchange(argv[2], argv[3]);
        if (pause)
            usleep(pause);
    }
    return 0;
}
