#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CShims.h"

int octopus_rename_noreplace(const char *from, const char *to) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */);
#else
    errno = ENOSYS;
    return -1;
#endif
}

#include <sys/resource.h>

int octopus_lower_thread_priority(void) {
    /* On Linux a thread id given to setpriority names that thread alone. */
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
}

#include <spawn.h>

int octopus_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int octopus_spawn_addchdir(void *actions, const char *path) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    return posix_spawn_file_actions_addchdir_np((posix_spawn_file_actions_t *)actions, path);
#else
    (void)actions;
    (void)path;
    return ENOSYS;
#endif
}
