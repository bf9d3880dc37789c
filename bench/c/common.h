// Helpers shared by the C reference programs: clocks, and `head -c N /dev/zero` on a pipe.
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

// Includers define _GNU_SOURCE before any include (pipe2).
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long long cpu_ns(const struct rusage *r) {
  return (r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1000000000LL + (r->ru_utime.tv_usec + r->ru_stime.tv_usec) * 1000LL;
}

/** Starts `head -c n /dev/zero` writing into a new pipe; returns its pid (-1 on failure, with the
 * reason printed) and the pipe's read end in *read_fd. */
static inline pid_t start_head(const char *n, int *read_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) { perror("pipe2"); return -1; }
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return -1; }
  if (pid == 0) {
    dup2(p[1], 1);
    execlp("head", "head", "-c", n, "/dev/zero", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *read_fd = p[0];
  return pid;
}

#endif
