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
