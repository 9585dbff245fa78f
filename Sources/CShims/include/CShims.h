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
