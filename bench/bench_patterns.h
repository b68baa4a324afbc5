/*
** The patterns a CPU benchmark runs over: the paths on its command line, or
** else every shipped pattern (the .lua files of $SIEVE_SOURCE_DIR/patterns, by name).
*/
#ifndef BENCH_PATTERNS_H
#define BENCH_PATTERNS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

static inline int bench_lua_file(const struct dirent *d) {
  size_t n = strlen(d->d_name);
  return n > 4 && !strcmp(d->d_name + n - 4, ".lua");
}

/* fn(ctx, path, arg) for each pattern; the ORed results, 1 when none was found. */
static inline int bench_each_pattern(sieve_ctx *ctx, int argc, char **argv, int first,
                                     int (*fn)(sieve_ctx *, const char *, void *), void *arg) {
  int bad = 0;
  if (first < argc) {
    for (int i = first; i < argc; i++) bad |= fn(ctx, argv[i], arg);
    return bad;
  }
  const char *src = getenv("SIEVE_SOURCE_DIR");
  char dir[1024], path[2048];
  snprintf(dir, sizeof dir, "%s/patterns", src ? src : ".");
  struct dirent **ents;
  int n = scandir(dir, &ents, bench_lua_file, alphasort);
  if (n <= 0) fprintf(stderr, "no patterns in %s\n", dir);
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    bad |= fn(ctx, path, arg);
    free(ents[i]);
  }
  if (n > 0) free(ents);
  return bad | (n <= 0);
}

#endif
