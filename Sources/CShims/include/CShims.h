#ifndef OCTOPUS_CSHIMS_H
#define OCTOPUS_CSHIMS_H

/// rename(2) that fails with EEXIST instead of replacing an existing target (renameat2 RENAME_NOREPLACE).
/// Returns 0, or -1 with errno set (EINVAL or ENOSYS where the file system or kernel lacks it).
int octopus_rename_noreplace(const char *from, const char *to);

#endif
