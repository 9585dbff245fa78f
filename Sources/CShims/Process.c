#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "CShims.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Spawning.
 *
 * Every fork of the process happens on one thread made for it, which lives as long as the process: the kernel sends
 * PR_SET_PDEATHSIG when the *thread* that forked a child ends, not the process, and the threads of Swift's
 * concurrency pool come and go. Between fork and exec the child calls only async-signal-safe functions.
 * ------------------------------------------------------------------------------------------------------------- */

static pthread_once_t spawner_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t spawner_callers = PTHREAD_MUTEX_INITIALIZER; /* one request at a time */
static pthread_mutex_t spawner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawner_wake = PTHREAD_COND_INITIALIZER;
static const octopus_spawn_request *spawner_request;
static octopus_spawn_result *spawner_result;
static int spawner_done;
static int spawner_start_error;

static void write_errno_and_exit(int fd, int error) {
    ssize_t ignored = write(fd, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

/* Closes every descriptor from `from` up, except `keep1` and `keep2`. */
static void close_from(int from, int keep1, int keep2) {
    int keep[2] = {keep1 < keep2 ? keep1 : keep2, keep1 < keep2 ? keep2 : keep1};
    int start = from;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < start) continue;
        if (keep[i] > start) {
#ifdef SYS_close_range
            if (syscall(SYS_close_range, (unsigned)start, (unsigned)(keep[i] - 1), 0) != 0)
#endif
                for (int fd = start; fd < keep[i]; fd++) close(fd);
        }
        start = keep[i] + 1;
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)start, ~0U, 0) == 0) return;
#endif
    struct rlimit limit;
    int max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 65536)
        max = (int)limit.rlim_cur;
    for (int fd = start; fd < max; fd++) close(fd);
}

/* The child, between fork and exec. */
static void run_child(const octopus_spawn_request *request, pid_t parent, int status_fd, int hold_fd) {
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Every disposition back to its default (NIO ignores SIGPIPE; a program we start must not inherit that). */
    struct sigaction deflt;
    memset(&deflt, 0, sizeof deflt);
    deflt.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &deflt, NULL);
    }
    if (request->ignore_interrupt) {
        struct sigaction ignore;
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        sigaction(SIGINT, &ignore, NULL);
    }
    if (request->new_session) {
        if (setsid() < 0) write_errno_and_exit(status_fd, errno);
    } else if (request->process_group) {
        if (setpgid(0, 0) < 0) write_errno_and_exit(status_fd, errno);
    }
    if (request->death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, request->death_signal, 0, 0, 0) < 0) write_errno_and_exit(status_fd, errno);
        /* The parent may have ended before the call: then no signal would ever come. */
        if (getppid() != parent) _exit(127);
    }
    /* Descriptors: first lift every source above the target range (a source may sit on another's target), then
     * put each in place; a target with no source is /dev/null for 0-2 and closed otherwise. */
    int count = request->fd_count;
    int lifted[OCTOPUS_SPAWN_MAX_FDS];
    int base = count + 3;
    if (status_fd >= base) base = status_fd + 1;
    if (hold_fd >= base) base = hold_fd + 1;
    for (int i = 0; i < count; i++) {
        lifted[i] = -1;
        if (request->fds[i] >= 0) {
            lifted[i] = fcntl(request->fds[i], F_DUPFD, base);
            if (lifted[i] < 0) write_errno_and_exit(status_fd, errno);
        }
    }
    /* status_fd and hold_fd may sit in the target range: move them out of it first. */
    if (status_fd < count) {
        int moved = fcntl(status_fd, F_DUPFD_CLOEXEC, base);
        if (moved < 0) _exit(127);
        status_fd = moved;
    }
    if (hold_fd >= 0 && hold_fd < count) {
        int moved = fcntl(hold_fd, F_DUPFD_CLOEXEC, base);
        if (moved < 0) write_errno_and_exit(status_fd, errno);
        hold_fd = moved;
    }
    for (int i = 0; i < count; i++) {
        if (lifted[i] >= 0) {
            if (dup2(lifted[i], i) < 0) write_errno_and_exit(status_fd, errno);
        } else if (i <= 2) {
            int null = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
            if (null < 0) write_errno_and_exit(status_fd, errno);
            if (null != i) {
                if (dup2(null, i) < 0) write_errno_and_exit(status_fd, errno);
                close(null);
            }
        } else {
            close(i);
        }
    }
    for (int i = count; i < 3; i++) {
        /* Standard descriptors not named are /dev/null, never whatever the parent had there. */
        int null = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
        if (null >= 0 && null != i) {
            dup2(null, i);
            close(null);
        }
    }
    int first_free = count > 3 ? count : 3;
    close_from(first_free, status_fd, hold_fd);
    if (request->directory != NULL && chdir(request->directory) < 0) write_errno_and_exit(status_fd, errno);
    if (hold_fd >= 0) {
        char go = 0;
        ssize_t n;
        do {
            n = read(hold_fd, &go, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127); /* the parent gave up, or died, before letting us run */
        close(hold_fd);
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(request->path, request->argv, request->envp);
    write_errno_and_exit(status_fd, errno);
}

static void perform(const octopus_spawn_request *request, octopus_spawn_result *result) {
    result->pid = -1;
    result->error = 0;
    result->status_fd = -1;
    result->hold_fd = -1;
    if (request->fd_count > OCTOPUS_SPAWN_MAX_FDS) {
        result->error = EINVAL;
        return;
    }
    int status[2];
    if (pipe2(status, O_CLOEXEC) < 0) {
        result->error = errno;
        return;
    }
    int hold[2] = {-1, -1};
    if (request->hold && pipe2(hold, O_CLOEXEC) < 0) {
        result->error = errno;
        close(status[0]);
        close(status[1]);
        return;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(status[0]);
        if (hold[1] >= 0) close(hold[1]);
        run_child(request, parent, status[1], hold[0]);
        _exit(127);
    }
    int error = errno;
    close(status[1]);
    if (hold[0] >= 0) close(hold[0]);
    if (pid < 0) {
        result->error = error;
        close(status[0]);
        if (hold[1] >= 0) close(hold[1]);
        return;
    }
    result->pid = pid;
    result->status_fd = status[0];
    result->hold_fd = hold[1];
}

static void *spawner_main(void *unused) {
    (void)unused;
    /* This thread takes no signals: they belong to the threads that handle them. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    pthread_mutex_lock(&spawner_lock);
    for (;;) {
        while (spawner_request == NULL) pthread_cond_wait(&spawner_wake, &spawner_lock);
        perform(spawner_request, spawner_result);
        spawner_request = NULL;
        spawner_done = 1;
        pthread_cond_broadcast(&spawner_wake);
    }
    return NULL;
}

static void start_spawner(void) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    spawner_start_error = pthread_create(&thread, &attributes, spawner_main, NULL);
    pthread_attr_destroy(&attributes);
}

/* Reads the exec outcome: 0 once the child has called execve, else the errno that stopped it. */
static int read_exec_outcome(int status_fd) {
    int error = 0;
    ssize_t n;
    do {
        n = read(status_fd, &error, sizeof error);
    } while (n < 0 && errno == EINTR);
    close(status_fd);
    if (n == (ssize_t)sizeof error) return error;
    if (n == 0) return 0;
    return EPIPE; /* the child ended before exec without saying why (parent gone, hold abandoned) */
}

int octopus_spawn(const octopus_spawn_request *request, octopus_spawn_result *result) {
    pthread_once(&spawner_once, start_spawner);
    if (spawner_start_error != 0) {
        result->pid = -1;
        result->error = spawner_start_error;
        return -1;
    }
    pthread_mutex_lock(&spawner_callers);
    pthread_mutex_lock(&spawner_lock);
    spawner_request = request;
    spawner_result = result;
    spawner_done = 0;
    pthread_cond_broadcast(&spawner_wake);
    while (!spawner_done) pthread_cond_wait(&spawner_wake, &spawner_lock);
    pthread_mutex_unlock(&spawner_lock);
    pthread_mutex_unlock(&spawner_callers);
    if (result->pid < 0) return -1;
    if (!request->hold) {
        int error = read_exec_outcome(result->status_fd);
        result->status_fd = -1;
        if (error != 0) {
            /* The child has exited with 127; the caller reaps it. */
            result->error = error;
            return -1;
        }
    }
    return 0;
}

int octopus_spawn_release(octopus_spawn_result *result) {
    char go = 1;
    ssize_t n;
    do {
        n = write(result->hold_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    close(result->hold_fd);
    result->hold_fd = -1;
    int error = read_exec_outcome(result->status_fd);
    result->status_fd = -1;
    result->error = error;
    return error == 0 ? 0 : -1;
}

void octopus_spawn_abandon(octopus_spawn_result *result) {
    if (result->hold_fd >= 0) close(result->hold_fd);
    if (result->status_fd >= 0) close(result->status_fd);
    result->hold_fd = -1;
    result->status_fd = -1;
}

int octopus_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

int octopus_wait_status_signal(int status) {
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

int octopus_wait_status_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Process groups to end with this process, and the parent's death.
 * ------------------------------------------------------------------------------------------------------------- */

static _Atomic int registered_groups[OCTOPUS_MAX_GROUPS];

int octopus_groups_add(int pgid) {
    for (int i = 0; i < OCTOPUS_MAX_GROUPS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&registered_groups[i], &expected, pgid)) return 0;
    }
    return -1;
}

void octopus_groups_remove(int pgid) {
    for (int i = 0; i < OCTOPUS_MAX_GROUPS; i++) {
        int expected = pgid;
        if (atomic_compare_exchange_strong(&registered_groups[i], &expected, 0)) return;
    }
}

void octopus_groups_kill(int sig) {
    for (int i = 0; i < OCTOPUS_MAX_GROUPS; i++) {
        int pgid = atomic_load(&registered_groups[i]);
        if (pgid > 0) kill(-pgid, sig);
    }
}

int octopus_parent_death_signal(void) { return SIGRTMIN + 4; }

static void on_parent_death(int sig) {
    (void)sig;
    int saved = errno;
    octopus_groups_kill(SIGKILL);
    /* The process notices the end of its channel to the parent and exits by itself, flushing its logs; should it
     * not, the default action of SIGALRM ends it. */
    alarm(2);
    errno = saved;
}

int octopus_install_parent_death_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_parent_death;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(octopus_parent_death_signal(), &action, NULL);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Interrupting a thread blocked in a system call.
 * ------------------------------------------------------------------------------------------------------------- */

static int interrupt_signal(void) { return SIGRTMIN + 5; }

static void on_interrupt(int sig) { (void)sig; }

static void install_interrupt_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART: the blocked call returns EINTR */
    sigaction(interrupt_signal(), &action, NULL);
}

void octopus_make_interruptible(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_interrupt_handler);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, interrupt_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void octopus_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

unsigned long octopus_current_thread(void) { return (unsigned long)pthread_self(); }

int octopus_interrupt_thread(unsigned long thread) { return pthread_kill((pthread_t)thread, interrupt_signal()); }

int octopus_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Record locks (POSIX, per process): the holder's pid can be read by anyone (F_GETLK), and the lock ends with the
 * process that holds it. Not inherited by children.
 * ------------------------------------------------------------------------------------------------------------- */

int octopus_lock_file(int fd) {
    struct flock lock;
    memset(&lock, 0, sizeof lock);
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    return fcntl(fd, F_SETLK, &lock);
}

int octopus_lock_holder(int fd) {
    struct flock lock;
    memset(&lock, 0, sizeof lock);
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &lock) < 0) return -1;
    return lock.l_type == F_UNLCK ? 0 : lock.l_pid;
}

int octopus_ignore_signal(int sig) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_IGN;
    return sigaction(sig, &action, NULL);
}

int octopus_default_signal(int sig) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    return sigaction(sig, &action, NULL);
}
