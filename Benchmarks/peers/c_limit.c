// The C write limit for the common log workload: format each line with snprintf, gather lines in a 64 KiB buffer,
// write(2) it when full. No logger does less work than this.
//   c_limit OUTFILE N
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: c_limit OUTFILE N\n"); return 2; }
    long n = atol(argv[2]);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    static char buffer[65536];
    size_t used = 0;
    long long bytes = 0;
    double start = seconds();
    time_t cached = -1;
    char date[32];
    for (long i = 0; i < n; i++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec != cached) {  // the calendar date changes once a second: format it once a second
            struct tm tm;
            cached = now.tv_sec;
            localtime_r(&cached, &tm);
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
        }
        char line[256];
        int length = snprintf(line, sizeof line,
            "%s.%03ld [INFO] app - user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=%ld\n", date,
            now.tv_nsec / 1000000, i);
        if (used + length > sizeof buffer) {
            if (write(fd, buffer, used) != (ssize_t)used) { perror("write"); return 1; }
            used = 0;
        }
        memcpy(buffer + used, line, length);
        used += length;
        bytes += length;
    }
    if (used && write(fd, buffer, used) != (ssize_t)used) { perror("write"); return 1; }
    close(fd);
    double secs = seconds() - start;
    printf("impl=c-limit lines=%ld secs=%.4f lines_per_s=%.0f MB_per_s=%.1f\n", n, secs, n / secs, bytes / 1e6 / secs);
    return 0;
}
