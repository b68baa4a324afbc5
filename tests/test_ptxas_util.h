/*
** NVIDIA's ptxas for the tests that assemble generated PTX (test_ptxas.c,
** test_search.c, test_tablegen.c). It is optional: a test that finds none
** says so and checks the generated text alone.
*/
#ifndef TEST_PTXAS_UTIL_H
#define TEST_PTXAS_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int tp_executable(const char *p) {
  struct stat st;
  return !stat(p, &st) && S_ISREG(st.st_mode) && !access(p, X_OK);
}

/* ptxas on PATH, else in /usr/local/cuda/bin: its path in out, 0 when neither has it. */
static inline int tp_find_ptxas(char *out, size_t n) {
  const char *path = getenv("PATH");
  char buf[4096], *save = NULL;
  snprintf(buf, sizeof buf, "%s", path ? path : "");
  for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(out, n, "%s/ptxas", d);
    if (tp_executable(out)) return 1;
  }
  snprintf(out, n, "/usr/local/cuda/bin/ptxas");
  return tp_executable(out);
}

/* Assembles ptx with `ptxas -arch=ARCH -v`, its output in log. Returns
** ptxas's exit status; -1, with the cause in log, when it could not run. */
static inline int tp_assemble(const char *ptxas, const char *ptx, const char *arch, char *log, size_t n) {
  char file[] = "/tmp/sieve-ptxas-XXXXXX";
  int fd = mkstemp(file);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  log[0] = 0;
  if (!f || fputs(ptx, f) < 0 || fclose(f)) {
    snprintf(log, n, "cannot write %s", file);
    if (fd >= 0) unlink(file);
    return -1;
  }
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "'%s' -arch=%s -v -o /dev/null %s 2>&1", ptxas, arch, file);
  FILE *p = popen(cmd, "r");
  if (!p) {
    snprintf(log, n, "cannot run %s", ptxas);
    unlink(file);
    return -1;
  }
  log[fread(log, 1, n - 1, p)] = 0;
  int st = pclose(p);
  unlink(file);
  return st;
}

/* ptxas -v's advisory that it serialised a kernel's wgmma.mma_async
** (C7515: a register of an in-flight product written by other code). The
** kernel stays correct but loses the products' overlap, so a test that
** assembles wgmma code fails on it. */
static inline int tp_wgmma_serialised(const char *log) {
  return strstr(log, "C7515") != NULL || strstr(log, "instructions are serialized") != NULL;
}

#endif
