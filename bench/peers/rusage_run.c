/* rusage_run.c: runs one command and writes what wait4 says it used, so
 * bench/peers/compare measures every peer the same way:
 *
 *   rusage_run OUT_FILE COMMAND [ARG...]
 *
 * writes "user_us=U sys_us=S maxrss_kb=M wall_s=W status=X" to OUT_FILE
 * and exits with COMMAND's status (128+signal if it was killed).
 *
 * Why not os.wait4 in the Python orchestrator directly: Linux carries the
 * high-water RSS of the process that forks into its child's ru_maxrss (the
 * child starts as a copy, and exec records the old address space's peak),
 * so every tool spawned from Python would report at least Python's ~10 MB.
 * Forking from this small program keeps that floor near 1 MB. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  struct rusage ru;
  int status = 0, code;
  double t0, t1;
  pid_t pid;
  FILE *out;

  if (argc < 3) {
    fprintf(stderr, "usage: rusage_run OUT_FILE COMMAND [ARG...]\n");
    return 2;
  }
  t0 = now_s();
  pid = fork();
  if (pid < 0) {
    perror("rusage_run: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    fprintf(stderr, "rusage_run: exec %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("rusage_run: wait4");
      return 2;
    }
  }
  t1 = now_s();
  code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out = fopen(argv[1], "w");
  if (!out) {
    perror("rusage_run: open OUT_FILE");
    return 2;
  }
  fprintf(out, "user_us=%ld sys_us=%ld maxrss_kb=%ld wall_s=%.6f status=%d\n",
          (long)ru.ru_utime.tv_sec * 1000000L + (long)ru.ru_utime.tv_usec,
          (long)ru.ru_stime.tv_sec * 1000000L + (long)ru.ru_stime.tv_usec, ru.ru_maxrss,
          t1 - t0, code);
  fclose(out);
  return code;
}
