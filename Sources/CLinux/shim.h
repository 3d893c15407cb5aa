// Linux calls glibc declares only under _GNU_SOURCE, which Swift's Glibc module is built without.
#ifndef LETHE_CLINUX_SHIM_H
#define LETHE_CLINUX_SHIM_H
#include <malloc.h>  // mallopt, malloc_trim (glibc's allocator tuning)
// syncfs(2): writes out every dirty page and inode of the file system holding `fd`, and waits.
int syncfs(int fd);
#endif
