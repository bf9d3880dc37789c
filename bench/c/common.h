// Helpers shared by the C reference programs: clocks, `head -c N /dev/zero` on a pipe, and the
// whole PTY transfer (pty-reader.c runs it as a program, pty-in-node.c on Node's own thread,
// pty-handoff.c with a consumer thread beside it).
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

// Includers define _GNU_SOURCE before any include (pipe2).
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
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

/** openpty + fork/exec of `head -c n /dev/zero` on the slave; returns its pid (-1 on failure, with
 * the reason printed) and the master in *master_fd. */
static inline pid_t pty_start_head(const char *n, int *master_fd) {
  int master, slave;
  if (openpty(&master, &slave, NULL, NULL, NULL) < 0) { perror("openpty"); return -1; }
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return -1; }
  if (pid == 0) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0); dup2(slave, 1); dup2(slave, 2);
    if (slave > 2) close(slave);
    close(master);
    execlp("head", "head", "-c", n, "/dev/zero", (char *)NULL);
    _exit(127);
  }
  close(slave);
  *master_fd = master;
  return pid;
}

/** One read of a PTY master: bytes read, or 0 at the end (EIO once the slave is closed and
 * drained, or EOF); EINTR is retried. */
static inline ssize_t pty_read(int master, char *dst, size_t len) {
  for (;;) {
    ssize_t got = read(master, dst, len);
    if (got > 0) return got;
    if (got < 0 && errno == EINTR) continue;
    return 0;
  }
}

/** Closes the master and reaps the child. */
static inline void pty_finish(int master, pid_t pid) {
  close(master);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

/** The whole PTY transfer: pty_start_head, then a 64 KiB read loop on the master until its end,
 * then pty_finish. Returns the bytes read (-1 on failure, with the reason printed). */
static inline long long pty_transfer(const char *n) {
  static char buf[65536];
  int master;
  pid_t pid = pty_start_head(n, &master);
  if (pid < 0) return -1;
  long long total = 0;
  for (ssize_t got; (got = pty_read(master, buf, sizeof buf)) > 0;) total += got;
  pty_finish(master, pid);
  return total;
}

#endif
