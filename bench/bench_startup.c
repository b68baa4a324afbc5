/*
** Cold vs warm start of a plan, each in a fresh process: cold with an empty
** kernel cache (tables + code generation + driver JIT + load), warm with
** the kernel already on disk (tables + cache read + module load). The CUDA
** context is made before the clock starts: a host pays it once anyway.
**   bench_startup [PATTERN SHAPE]...   (default: a few shipped patterns)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sieve.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The child: one plan, its creation time on stdout. */
static int child(const char *pattern, const char *shape_name) {
  sieve_ctx *ctx;
  sieve_shape shape;
  sieve_pattern *p;
  sieve_plan *plan;
  if (sieve_open(&ctx) || sieve_device_open(ctx, 0)) {
    fprintf(stderr, "%s\n", ctx ? sieve_errmsg(ctx) : "no memory");
    return 77;
  }
  char path[1024];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/patterns/%s.lua", src ? src : ".", pattern);
  double t0 = now_ms();
  if (sieve_shape_preset(shape_name, &shape) || sieve_pattern_load(ctx, path, NULL, &p) ||
      sieve_plan_create(ctx, p, &shape, SIEVE_BF16, NULL, &plan)) {
    fprintf(stderr, "%s\n", sieve_errmsg(ctx));
    return 1;
  }
  printf("%.1f\n", now_ms() - t0);
  sieve_plan_free(plan);
  sieve_pattern_free(p);
  sieve_close(ctx);
  return 0;
}

static double spawn(const char *self, const char *pattern, const char *shape) {
  int fd[2];
  if (pipe(fd)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    execl(self, self, "--child", pattern, shape, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  char buf[64] = {0};
  ssize_t n = read(fd[0], buf, sizeof buf - 1);
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) || n <= 0) return WIFEXITED(st) && WEXITSTATUS(st) == 77 ? -77 : -1;
  return atof(buf);
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--child")) return child(argv[2], argv[3]);
  static const char *def[] = {"dense", "hunyuan-720p", "frame_window", "hunyuan-720p",
                              "lvsa", "wan-1.3b-480p", "svg", "cogvideox-1.5"};
  const char **list = argc > 1 ? (const char **)argv + 1 : def;
  int n = argc > 1 ? (argc - 1) / 2 : 4;
  char dir[] = "/tmp/sieve-startup-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  setenv("SIEVE_CACHE_DIR", dir, 1);
  printf("| pattern | shape | cold ms | warm ms | warm again ms |\n| --- | --- | --- | --- | --- |\n");
  int rc = 0;
  for (int i = 0; i < n; i++) {
    double c = spawn(argv[0], list[2 * i], list[2 * i + 1]);
    if (c == -77) {
      printf("no GPU: skipped\n");
      return 77;
    }
    double w = spawn(argv[0], list[2 * i], list[2 * i + 1]);
    double w2 = spawn(argv[0], list[2 * i], list[2 * i + 1]);
    rc |= c < 0 || w < 0 || w2 < 0;
    printf("| %s | %s | %.1f | %.1f | %.1f |\n", list[2 * i], list[2 * i + 1], c, w, w2);
    fflush(stdout);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = 1;
  return rc;
}
