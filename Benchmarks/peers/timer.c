/* The timer floor: a timerfd on CLOCK_MONOTONIC with absolute deadlines start + k * period; how late each wake-up
 * is, in microseconds.   timer timerfd [PERIOD_MS=100] [WAKES=50] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int64_t period = (argc > 2 ? atoll(argv[2]) : 100) * 1000000;
    int wakes = argc > 3 ? atoi(argv[3]) : 50;
    double *late = calloc((size_t)wakes, sizeof(double));
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    int64_t start = now_ns();
    struct itimerspec spec = {0};
    spec.it_value.tv_sec = (start + period) / 1000000000;
    spec.it_value.tv_nsec = (start + period) % 1000000000;
    spec.it_interval.tv_sec = period / 1000000000;
    spec.it_interval.tv_nsec = period % 1000000000;
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
    double sum = 0;
    for (int k = 1; k <= wakes; k++) {
        uint64_t expirations;
        if (read(fd, &expirations, sizeof expirations) != sizeof expirations) return 1;
        late[k - 1] = (double)(now_ns() - (start + k * period)) / 1000.0;
        sum += late[k - 1];
    }
    qsort(late, (size_t)wakes, sizeof(double), by_value);
    printf("impl=c-timerfd wakes=%d mean_late_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f min_us=%.1f\n", wakes,
           sum / wakes, late[wakes / 2], late[(int)(0.99 * (wakes - 1) + 0.5)], late[wakes - 1], late[0]);
    return 0;
}
