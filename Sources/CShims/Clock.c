// The wall clock for log lines, read from the CPU's time-stamp counter between readings of the kernel's clock.
//
// Each thread takes CLOCK_REALTIME from the kernel at most about once a millisecond (and at once when it has
// not asked for the time in that long) and, in between, adds the counter's ticks since that reading, converted
// with a rate measured against CLOCK_MONOTONIC (which the kernel slews as it slews the wall clock) and measured
// again every second. A reading is a counter read, a compare, a multiply and an add (~10 ns here, where
// clock_gettime through the vDSO costs ~26 ns: it fences the counter read and checks the kernel's sequence).
//
// Used only where the kernel itself keeps time with the counter (clocksource "tsc": constant, synchronised
// between CPUs; looked at again every second, as the kernel may leave the counter); elsewhere, and during the first
// 10 ms of a process while the rate is measured, every reading is clock_gettime. A step of the wall clock
// (settimeofday, an NTP step) shows within a millisecond. Within a thread the time never goes back by less than a
// millisecond (a rebase can land a few nanoseconds behind the extrapolated time); larger steps back are the clock's
// own and are passed on.

#include "CShims.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t nanoseconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#if defined(__x86_64__)
#include <x86intrin.h>

/// Rebase a thread's reading this often (nanoseconds).
#define REBASE_NS 1000000ull
/// Measure the rate again this often (nanoseconds), and first after this long.
#define RECALIBRATE_NS 1000000000ull
#define FIRST_CALIBRATION_NS 10000000ull

typedef struct {
    /// Counter and wall-clock nanoseconds at the thread's last reading of the kernel's clock.
    uint64_t base_ticks;
    int64_t base_ns;
    /// Ticks after which to read the kernel's clock again; 0: every time.
    uint64_t window;
    /// Nanoseconds per tick, 32.32 fixed point.
    uint64_t rate;
    /// The last time handed out (no small steps back).
    int64_t last_ns;
} thread_clock;

static __thread thread_clock this_thread;

/// 32.32 nanoseconds per tick; 0 while unknown or where the counter is not the kernel's clock.
static _Atomic uint64_t shared_rate;
static pthread_mutex_t calibration_lock = PTHREAD_MUTEX_INITIALIZER;
/// -1: the counter is not used; 0: not yet decided; 1: used.
static int counter_usable;
/// `counter_usable < 0`, for the threads that do not take the lock.
static _Atomic int counter_unusable;
/// The counter and CLOCK_MONOTONIC when the rate was last measured (the ticks also read without the lock, to see
/// whether a second has passed).
static _Atomic uint64_t sample_ticks;
static int64_t sample_mono_ns;

/// Reads `clock` and the counter at one moment: the counter's value is the midpoint of reads just before and just
/// after. A thread preempted between the two would pair the clock with a counter value far from its moment, so a
/// try whose reads are more than ~10 µs apart is made again, up to three times, keeping the closest.
static int64_t paired_reading(clockid_t clock, uint64_t *ticks) {
    uint64_t best_gap = UINT64_MAX;
    int64_t best_ns = 0;
    for (int attempt = 0; attempt < 3 && best_gap > 30000; attempt++) {
        uint64_t before = __rdtsc();
        int64_t ns = nanoseconds(clock);
        uint64_t after = __rdtsc();
        if (after - before < best_gap) {
            best_gap = after - before;
            best_ns = ns;
            *ticks = before + best_gap / 2;
        }
    }
    return best_ns;
}

/// Whether the kernel's clocksource is the counter (read with plain system calls: no allocation, as this runs in a
/// logging call once a second).
static int kernel_uses_counter(void) {
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char name[8] = {0};
    ssize_t count = read(fd, name, sizeof name);
    close(fd);
    return count == 4 && memcmp(name, "tsc\n", 4) == 0;
}

/// Under `calibration_lock`: decides whether the counter is used, and measures its rate over the time since the
/// last sample once that is long enough.
static void calibrate(uint64_t ticks) {
    if (counter_usable == 0) {
        counter_usable = kernel_uses_counter() ? 1 : -1;
        if (counter_usable < 0) {
            atomic_store_explicit(&counter_unusable, 1, memory_order_relaxed);
            return;
        }
        uint64_t first_ticks;
        sample_mono_ns = paired_reading(CLOCK_MONOTONIC, &first_ticks);
        atomic_store_explicit(&sample_ticks, first_ticks, memory_order_relaxed);
        return;
    }
    if (counter_usable < 0) return;
    uint64_t rate = atomic_load_explicit(&shared_rate, memory_order_relaxed);
    uint64_t last_ticks = atomic_load_explicit(&sample_ticks, memory_order_relaxed);
    if (rate != 0 && ((unsigned __int128)(ticks - last_ticks) * rate >> 32) < RECALIBRATE_NS) return;
    if (rate != 0 && !kernel_uses_counter()) {
        // The kernel left the counter (its watchdog found it unstable): so does every thread, within a millisecond.
        counter_usable = -1;
        atomic_store_explicit(&counter_unusable, 1, memory_order_relaxed);
        atomic_store_explicit(&shared_rate, 0, memory_order_relaxed);
        return;
    }
    uint64_t now_ticks;
    int64_t mono = paired_reading(CLOCK_MONOTONIC, &now_ticks);
    int64_t elapsed_ns = mono - sample_mono_ns;
    uint64_t elapsed_ticks = now_ticks - last_ticks;
    if (elapsed_ns < (int64_t)FIRST_CALIBRATION_NS || elapsed_ticks == 0 || elapsed_ticks > (1ull << 62)) return;
    uint64_t measured = (uint64_t)((((unsigned __int128)elapsed_ns) << 32) / elapsed_ticks);
    atomic_store_explicit(&shared_rate, measured, memory_order_relaxed);
    atomic_store_explicit(&sample_ticks, now_ticks, memory_order_relaxed);
    sample_mono_ns = mono;
}

/// Reads the kernel's clock and makes it the thread's base.
static int64_t rebase(thread_clock *clock) {
    uint64_t ticks;
    int64_t now = paired_reading(CLOCK_REALTIME, &ticks);
    uint64_t rate = atomic_load_explicit(&shared_rate, memory_order_relaxed);
    // Until the rate is known every thread waits its turn here (the first 10 ms); after that, once a second has
    // passed since the rate was measured, one thread measures it again and the others go on with the rate they have.
    int due = rate == 0
        || ((unsigned __int128)(ticks - atomic_load_explicit(&sample_ticks, memory_order_relaxed)) * rate >> 32)
            >= RECALIBRATE_NS;
    int locked = !due ? 0
        : rate == 0   ? pthread_mutex_lock(&calibration_lock) == 0
                      : pthread_mutex_trylock(&calibration_lock) == 0;
    if (locked) {
        calibrate(ticks);
        rate = atomic_load_explicit(&shared_rate, memory_order_relaxed);
        pthread_mutex_unlock(&calibration_lock);
    }
    clock->base_ticks = ticks;
    clock->base_ns = now;
    clock->rate = rate;
    clock->window = rate == 0 ? 0 : (uint64_t)((((unsigned __int128)REBASE_NS) << 32) / rate);
    return now;
}

int64_t octopus_realtime_nanoseconds(void) {
    thread_clock *clock = &this_thread;
    int64_t now;
    if (__builtin_expect(clock->window != 0, 1)) {
        uint64_t ticks = __rdtsc();
        uint64_t elapsed = ticks - clock->base_ticks;
        now = __builtin_expect(elapsed < clock->window, 1) ? clock->base_ns + (int64_t)((elapsed * clock->rate) >> 32)
                                                          : rebase(clock);
    } else if (atomic_load_explicit(&counter_unusable, memory_order_relaxed)) {
        return nanoseconds(CLOCK_REALTIME);
    } else {
        now = rebase(clock);
    }
    int64_t back = clock->last_ns - now;
    if (__builtin_expect(back > 0 && back < 1000000, 0)) return clock->last_ns;
    clock->last_ns = now;
    return now;
}

int octopus_order_stamps_usable(void) {
    unsigned int eax, ebx, ecx, edx;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0x80000001u), "c"(0u));
    int has_rdtscp = (edx >> 27) & 1;
    return has_rdtscp && kernel_uses_counter();
}

#else

int64_t octopus_realtime_nanoseconds(void) { return nanoseconds(CLOCK_REALTIME); }

int octopus_order_stamps_usable(void) { return 0; }

#endif
