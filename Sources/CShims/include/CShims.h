#ifndef OCTOPUS_CSHIMS_H
#define OCTOPUS_CSHIMS_H

/// rename(2) that fails with EEXIST instead of replacing an existing target (renameat2 RENAME_NOREPLACE).
/// Returns 0, or -1 with errno set (EINVAL or ENOSYS where the file system or kernel lacks it).
int octopus_rename_noreplace(const char *from, const char *to);

#endif

#ifndef OCTOPUS_CSHIMS_THREAD_H
#define OCTOPUS_CSHIMS_THREAD_H
/// Lowers the calling thread's scheduling priority (nice +10 for this thread only), for background work that
/// must yield to the threads that log. Returns 0, or -1 with errno set.
int octopus_lower_thread_priority(void);
#endif

#ifndef OCTOPUS_CSHIMS_SPAWN_H
#define OCTOPUS_CSHIMS_SPAWN_H
/// pipe2(fds, O_CLOEXEC). Returns 0, or -1 with errno set.
int octopus_pipe_cloexec(int fds[2]);
/// posix_spawn_file_actions_addchdir_np on a posix_spawn_file_actions_t; ENOSYS where glibc lacks it.
int octopus_spawn_addchdir(void *actions, const char *path);
#endif

#ifndef OCTOPUS_CSHIMS_PROCESS_H
#define OCTOPUS_CSHIMS_PROCESS_H
#include <sys/types.h>

#define OCTOPUS_SPAWN_MAX_FDS 16
#define OCTOPUS_MAX_GROUPS 1024

/// What to start. `fds[i]` becomes descriptor i of the child (-1: /dev/null for 0-2, closed above); give at least
/// three. Every other descriptor is closed, every signal is at its default and unblocked (SIGINT ignored with
/// `ignore_interrupt`).
typedef struct {
    const char *path;
    char *const *argv;
    char *const *envp;
    const int *fds;
    int fd_count;
    /// NULL: the parent's working directory.
    const char *directory;
    /// 1: the child leads a process group of its own.
    int process_group;
    /// 1: the child leads a session of its own (and so a group); for daemons.
    int new_session;
    /// > 0: the signal the child gets when the parent process ends (PR_SET_PDEATHSIG); a child whose parent is
    /// already gone by then exits at once.
    int death_signal;
    int ignore_interrupt;
    /// 1: the child waits before exec until `octopus_spawn_release` (or exits if abandoned): the parent can record
    /// the pid somewhere safe first.
    int hold;
} octopus_spawn_request;

typedef struct {
    pid_t pid;
    /// errno of what failed (in the parent, or in the child before exec).
    int error;
    int status_fd;
    int hold_fd;
} octopus_spawn_result;

/// Forks on the process's spawner thread (made once; it lives as long as the process, so PR_SET_PDEATHSIG is not
/// sent when some other thread ends) and, unless held, waits until the child has called execve. Returns 0, or -1
/// with `result->error` set (when `result->pid` > 0 the child exists and has exited: reap it).
int octopus_spawn(const octopus_spawn_request *request, octopus_spawn_result *result);
/// Lets a held child exec and waits until it has; 0, or -1 with `result->error` (reap the child).
int octopus_spawn_release(octopus_spawn_result *result);
/// Lets a held child go without exec: it exits with 127 (reap it).
void octopus_spawn_abandon(octopus_spawn_result *result);

/// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC).
int octopus_socketpair_cloexec(int fds[2]);
/// The signal that ended a process by its wait status, or 0.
int octopus_wait_status_signal(int status);
/// The exit code by a wait status, or -1.
int octopus_wait_status_code(int status);

/// Process groups this process started and ends when it is told its parent died (async-signal-safe registry).
int octopus_groups_add(int pgid);
void octopus_groups_remove(int pgid);
/// Sends `sig` to every registered group.
void octopus_groups_kill(int sig);

/// The signal a cluster child gets when its master ends (a real-time signal nothing else uses).
int octopus_parent_death_signal(void);
/// Handles that signal: every registered group gets SIGKILL, and the process is ended 2 s later by SIGALRM unless it
/// has exited by itself (it notices its channel to the parent closing).
int octopus_install_parent_death_handler(void);
/// PR_SET_PDEATHSIG for the calling process.
int octopus_set_parent_death_signal(int sig);

/// Lets another thread interrupt the calling thread's blocking system calls (`flock`, which no descriptor trick
/// wakes): installs, once, a handler that does nothing for a real-time signal nothing else uses (without SA_RESTART,
/// so the call returns EINTR), and unblocks that signal in the calling thread only.
void octopus_make_interruptible(void);
/// Names the calling thread (at most 15 bytes), as `ps -L`, `top -H` and /proc/PID/task/TID/comm show it. Called
/// first thing in a thread's body: Foundation's `Thread.name` does not reach the OS on Linux.
void octopus_name_thread(const char *name);
/// The calling thread, for ``octopus_interrupt_thread``.
unsigned long octopus_current_thread(void);
/// Interrupts a thread that called ``octopus_make_interruptible`` (it must not have exited). 0, or an errno.
int octopus_interrupt_thread(unsigned long thread);

/// Takes a POSIX write lock on the whole file without waiting. 0, or -1 with errno (EAGAIN/EACCES: held).
int octopus_lock_file(int fd);
/// The pid of the process holding a lock on the file, 0 when none, -1 on error.
int octopus_lock_holder(int fd);

int octopus_ignore_signal(int sig);
int octopus_default_signal(int sig);
#endif

#ifndef OCTOPUS_CSHIMS_ATOMIC_H
#define OCTOPUS_CSHIMS_ATOMIC_H
#include <stdint.h>
/// Stores `value` at `address` (4-byte aligned) with release ordering: a thread that reads it with
/// `octopus_load_acquire_u32` also sees everything the storing thread wrote before.
static inline void octopus_store_release_u32(void *address, uint32_t value) {
    __atomic_store_n((uint32_t *)address, value, __ATOMIC_RELEASE);
}
/// Asks for the cache line at `address` to be brought in ready to be written (PREFETCHW; a no-op where the CPU
/// lacks it). Never faults.
static inline void octopus_prefetch_for_write(const void *address) {
#if defined(__x86_64__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)address));
#else
    __builtin_prefetch(address, 1, 3);
#endif
}
/// Loads the value at `address` (4-byte aligned) with acquire ordering.
static inline uint32_t octopus_load_acquire_u32(const void *address) {
    return __atomic_load_n((const uint32_t *)address, __ATOMIC_ACQUIRE);
}
/// A 64-bit word in raw memory (8-byte aligned), read and changed atomically; every operation sequentially consistent.
static inline uint64_t octopus_load_u64(const void *address) {
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_SEQ_CST);
}
static inline void octopus_store_u64(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_SEQ_CST);
}
static inline void octopus_add_u64(void *address, uint64_t value) {
    __atomic_fetch_add((uint64_t *)address, value, __ATOMIC_SEQ_CST);
}
/// Replaces `*expected` at `address` with `desired`; false (and `*expected` the value found) when it was not there.
static inline _Bool octopus_compare_exchange_u64(void *address, uint64_t *expected, uint64_t desired) {
    return __atomic_compare_exchange_n((uint64_t *)address, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
#endif

#ifndef OCTOPUS_CSHIMS_ORDER_H
#define OCTOPUS_CSHIMS_ORDER_H
#include <stdint.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
/// A stamp that orders events between threads, and the CPU the caller runs on (it may be moved right after). A
/// stamp taken by a thread after it has seen what another thread wrote is larger than every stamp that thread took
/// before writing it: the time-stamp counter read with RDTSCP, which waits until every earlier load is globally
/// visible and lets no later store become visible before it; the CPU is what Linux keeps in TSC_AUX. Use only where
/// `octopus_order_stamps_usable` says so.
static inline uint64_t octopus_order_stamp_and_cpu(uint32_t *cpu) {
#if defined(__x86_64__)
    unsigned int aux;
    uint64_t stamp = __rdtscp(&aux);
    *cpu = aux & 0xfff;
    return stamp;
#else
    *cpu = 0;
    return 0;
#endif
}
/// An order stamp (see `octopus_order_stamp_and_cpu`), after which no later instruction starts until it is read.
static inline uint64_t octopus_order_stamp_fenced(void) {
#if defined(__x86_64__)
    unsigned int aux;
    uint64_t stamp = __rdtscp(&aux);
    _mm_lfence();
    return stamp;
#else
    return 0;
#endif
}
/// Whether `octopus_order_stamp_and_cpu` orders events across CPUs here: an x86-64 CPU whose counter the kernel keeps time
/// with (clocksource "tsc": constant rate, synchronised between CPUs) and that has RDTSCP.
int octopus_order_stamps_usable(void);
#endif

#ifndef OCTOPUS_CSHIMS_CLOCK_H
#define OCTOPUS_CSHIMS_CLOCK_H
#include <stdint.h>
/// The wall clock (CLOCK_REALTIME) in nanoseconds since the epoch, extrapolated with the CPU's time-stamp counter
/// between readings of the kernel's clock at most a millisecond apart where the kernel keeps time with that counter
/// (see Clock.c); clock_gettime elsewhere.
int64_t octopus_realtime_nanoseconds(void);
#endif
