/*
** Finding and loading pattern scripts. A bare name ("lvsa") means a shipped
** pattern; anything with a '/' or a ".lua" suffix is a path, taken as is.
** The source tree's other files (bench/compare.py) are found here too.
*/
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SIEVE_PATTERNS_DIR
#define SIEVE_PATTERNS_DIR ""
#endif

/* p is never NULL (callers pass their buffers). A NULL test here, inlined
** into the candidate loops, led GCC -O3 to warn of a NULL buf in candidate(). */
static int is_dir(const char *p) {
  struct stat st;
  return *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_exe_dir(char *buf, size_t len) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = 0;
  return snprintf(buf, len, "%s", exe) < (int)len;
}

/* Looked for in $SIEVE_SOURCE_DIR, beside an installed binary, then in the
** source tree the binary was built from. */
int cli_find_file(const char *rel, char *buf, size_t len) {
  char dirs[4][4096] = {"", "", "", ""};
  const char *src = getenv("SIEVE_SOURCE_DIR");
  if (src) snprintf(dirs[0], sizeof dirs[0], "%s", src);
  if (cli_exe_dir(dirs[1], sizeof dirs[1])) {
    snprintf(dirs[2], sizeof dirs[2], "%.4000s/../share/sieve", dirs[1]);
    strncat(dirs[1], "/..", sizeof dirs[1] - strlen(dirs[1]) - 1);
  }
  snprintf(dirs[3], sizeof dirs[3], "%s", SIEVE_PATTERNS_DIR);
  char *cut = strrchr(dirs[3], '/');
  if (cut) *cut = 0;  /* <source>/patterns -> <source> */
  for (int i = 0; i < 4; i++) {
    if (!dirs[i][0]) continue;
    if (snprintf(buf, len, "%s/%s", dirs[i], rel) >= (int)len) continue;
    if (access(buf, R_OK) == 0) return 1;
  }
  return 0;
}

/* <dir of the running executable>/../patterns: where an install puts them. */
static int exe_patterns(char *buf, size_t len) {
  char dir[4096];
  return cli_exe_dir(dir, sizeof dir) && snprintf(buf, len, "%s/../patterns", dir) < (int)len;
}

/* The i-th candidate directory, in lookup order; 0 past the end. */
static int candidate(int i, char *buf, size_t len) {
  const char *env = getenv("SIEVE_PATTERNS");
  switch (i) {
  case 0: snprintf(buf, len, "%s", env ? env : ""); return 1;
  case 1:
    if (!exe_patterns(buf, len)) buf[0] = 0;
    return 1;
  case 2: snprintf(buf, len, "%s", SIEVE_PATTERNS_DIR); return 1;
  }
  return 0;
}

const char *cli_patterns_dir(char *buf, size_t len) {
  for (int i = 0; candidate(i, buf, len); i++)
    if (is_dir(buf)) return buf;
  return NULL;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_pattern_names(char *buf, size_t len) {
  char dir[4096], *names[256];
  int n = 0;
  buf[0] = 0;
  DIR *d = cli_patterns_dir(dir, sizeof dir) ? opendir(dir) : NULL;
  if (!d) return;
  for (struct dirent *e; (e = readdir(d)) && n < 256;) {
    size_t l = strlen(e->d_name);
    if (l > 4 && !strcmp(e->d_name + l - 4, ".lua") && e->d_name[0] != '.')
      if ((names[n] = strndup(e->d_name, l - 4))) n++;
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, by_name);
  size_t used = 0;
  for (int i = 0; i < n; i++) {
    if (used < len)
      used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " " : "", names[i]);
    free(names[i]);
  }
}

static int is_path(const char *arg) {
  size_t l = strlen(arg);
  return strchr(arg, '/') || (l > 4 && !strcmp(arg + l - 4, ".lua"));
}

int cli_pattern_path(const char *arg, char *buf, size_t len) {
  if (!*arg) return cli_fail(CLI_USAGE, "empty pattern name");
  if (is_path(arg)) {
    snprintf(buf, len, "%s", arg);
    return CLI_OK;
  }
  char dir[4096];
  for (int i = 0; candidate(i, dir, sizeof dir); i++) {
    if (!is_dir(dir)) continue;
    snprintf(buf, len, "%s/%s.lua", dir, arg);
    if (access(buf, F_OK) == 0) return CLI_OK;
  }
  char names[2048];
  if (!cli_patterns_dir(dir, sizeof dir))
    return cli_fail(CLI_USAGE, "no pattern '%s', and no patterns directory found "
                               "(set SIEVE_PATTERNS, or give a .lua path)", arg);
  cli_pattern_names(names, sizeof names);
  if (!names[0]) return cli_fail(CLI_USAGE, "no pattern '%s': %s holds no .lua patterns "
                                            "(set SIEVE_PATTERNS, or give a .lua path)", arg, dir);
  return cli_fail(CLI_USAGE, "no pattern '%s' (shipped: %s; or give a .lua path)", arg, names);
}

/* The library would say the same, but a missing file is the commonest
** mistake, and a directory opens fine and fails later with a vaguer word. */
static int readable(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return cli_fail(CLI_USAGE, "cannot read '%s': %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return cli_fail(CLI_USAGE, "cannot read '%s': is a directory", path);
  FILE *f = fopen(path, "rb");
  if (!f) return cli_fail(CLI_USAGE, "cannot read '%s': %s", path, strerror(errno));
  fclose(f);
  return CLI_OK;
}

int cli_pattern_load(sieve_ctx *ctx, const cli_common *com, sieve_pattern **out, char *path,
                     size_t pathlen) {
  *out = NULL;
  if (com->npos < 1) return cli_fail(CLI_USAGE, "missing PATTERN (a shipped name or a .lua file)");
  if (cli_pattern_path(com->pos[0], path, pathlen) || readable(path)) return CLI_USAGE;
  sieve_status st = sieve_pattern_load(ctx, path, com->params, out);
  if (st != SIEVE_OK) {
    *out = NULL;
    return cli_lib_fail(ctx, st, NULL);
  }
  return CLI_OK;
}
