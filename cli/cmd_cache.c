/*
** sieve cache list|stats|clear: the disk cache of compiled kernels, through
** the public cache API, and the tuning database that lives beside it.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rt_tunedb.h"

enum { OPT_LONG = CLI_OPT_CMD, OPT_TUNING };

extern const cli_cmd cli_cmd_cache;

typedef struct cache_args {
  cli_common com;
  int longer, tuning;
} cache_args;

static const cli_opt cache_opts[] = {
  {OPT_LONG, "--long", 'l', NULL, "list: also print each entry's file and whole key "
                                  "(default: one line each)"},
  {OPT_TUNING, "--tuning", 0, NULL, "clear: also remove the tuning database and sweep journals "
                                    "(default: kernels only)"},
  {0},
};

static int cache_opt(void *self, int id, const char *v) {
  cache_args *a = self;
  if (id == OPT_LONG) a->longer = 1;
  if (id == OPT_TUNING) a->tuning = 1;
  return CLI_OK;
}

static void human(double bytes, char *buf, size_t n) {
  const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) bytes /= 1024, i++;
  snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
}

/* ---------------------------------------------------------------- list */

typedef struct item {
  char *key, *path;
  int64_t bytes, mtime;
} item;

typedef struct items {
  item *v;
  size_t n, cap;
  int nomem;
} items;

static int collect(const sieve_cache_entry *ent, void *ud) {
  items *l = ud;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    item *v = realloc(l->v, cap * sizeof *v);
    if (!v) return l->nomem = 1;
    l->v = v;
    l->cap = cap;
  }
  item *it = &l->v[l->n++];
  it->key = ent->key ? strdup(ent->key) : NULL;
  it->path = strdup(ent->path);
  it->bytes = ent->bytes;
  it->mtime = ent->mtime;
  return 0;
}

static int newest_first(const void *a, const void *b) {
  int64_t x = ((const item *)a)->mtime, y = ((const item *)b)->mtime;
  return (x < y) - (x > y);
}

/* The value of key line `name` ("config block_m=..."), up to its newline. */
static const char *field(const char *key, const char *name, char *buf, size_t n) {
  size_t l = strlen(name);
  for (const char *p = key; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, name, l) && p[l] == ' ') {
      snprintf(buf, n, "%.*s", (int)strcspn(p + l + 1, "\n"), p + l + 1);
      return buf;
    }
  snprintf(buf, n, "?");
  return buf;
}

static void one_line(const item *it, int longer) {
  char when[32], size[32], kernel[64], pat[80], shape[160], dt[16], cfg[96], arch[16], dev[16], lay[512];
  time_t t = (time_t)it->mtime;
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
  human((double)it->bytes, size, sizeof size);
  if (!it->key) {
    printf("%s  %10s  (damaged header: removed and rebuilt on next use)  %s\n", when, size, it->path);
    return;
  }
  field(it->key, "pattern", pat, sizeof pat);
  if (!strncmp(it->key, "sieve table cache key ", 22)) {
    printf("%s  %10s  block tables  ir-sha256 %.12s  %s  %s\n", when, size, pat,
           field(it->key, "shape", shape, sizeof shape), field(it->key, "rows", cfg, sizeof cfg));
    if (longer) printf("    %s\n    %.*s\n", it->path, (int)strlen(it->key) - 1, it->key);
    return;
  }
  /* the layouts sieve.layout.auto chose, which the IR hash does not tell */
  int auto_layouts = strcmp(field(it->key, "layouts", lay, sizeof lay), "?") != 0;
  printf("%s  %10s  %s  ir-sha256 %.12s  %s  %s  %s  %s on %s%s%s\n", when, size,
         field(it->key, "kernel", kernel, sizeof kernel), pat,
         field(it->key, "shape", shape, sizeof shape), field(it->key, "dtype", dt, sizeof dt),
         field(it->key, "config", cfg, sizeof cfg), field(it->key, "arch", arch, sizeof arch),
         field(it->key, "device", dev, sizeof dev), auto_layouts ? "  layouts " : "", auto_layouts ? lay : "");
  if (longer) printf("    %s\n    %.*s\n", it->path, (int)strlen(it->key) - 1, it->key);
}

static int list(sieve_ctx *ctx, const cache_args *a) {
  items l = {0};
  sieve_status st = sieve_cache_list(ctx, collect, &l);
  int rc = st ? cli_lib_fail(ctx, st, "cache") : l.nomem ? cli_fail(CLI_FAIL, "out of memory") : CLI_OK;
  if (!rc) {
    if (l.n) qsort(l.v, l.n, sizeof *l.v, newest_first);  /* qsort(NULL, 0, ...) is undefined */
    for (size_t i = 0; i < l.n; i++) one_line(&l.v[i], a->longer);
    if (!l.n) printf("no kernels cached\n");
  }
  for (size_t i = 0; i < l.n; i++) {
    free(l.v[i].key);
    free(l.v[i].path);
  }
  free(l.v);
  return rc;
}

/* ------------------------------------------------------- stats, clear */

static int stats(sieve_ctx *ctx) {
  sieve_cache_info info;
  char used[32], lim[32], db[4200];
  int64_t tuned = 0;
  cg_err e = {0};
  sieve_status st = sieve_cache_stats(ctx, &info);
  if (st) return cli_lib_fail(ctx, st, "cache");
  human((double)info.bytes, used, sizeof used);
  human((double)info.limit, lim, sizeof lim);
  rt_tunedb_path(info.dir, db, sizeof db);
  printf("directory %s\n", info.dir);
  printf("entries   %lld (kernels, static block tables), %s", (long long)info.entries, used);
  if (info.limit) printf(" of %s (least recently used go first; $SIEVE_CACHE_MAX_MB)\n", lim);
  else printf(" (no limit)\n");
  if (rt_tunedb_count(db, &tuned, &e)) printf("tuning    %s: %s\n", db, e.msg);
  else printf("tuning    %lld tuned configs in %s\n", (long long)tuned, db);
  return CLI_OK;
}

static int clear(sieve_ctx *ctx, const cache_args *a) {
  int64_t removed = 0, tuning = 0;
  const char *dir = NULL;
  cg_err e = {0};
  sieve_status st = sieve_cache_clear(ctx, &removed);
  if (!st) st = sieve_cache_dir(ctx, &dir);
  if (st) return cli_lib_fail(ctx, st, "cache");
  printf("removed %lld entries (kernels, static block tables) from %s\n", (long long)removed, dir);
  if (a->tuning) {
    if (rt_tunedb_clear(dir, &tuning, &e)) return cli_status_fail(e.status, e.msg, "tuning");
    printf("removed the tuning database and journals (%lld files)\n", (long long)tuning);
  }
  return CLI_OK;
}

static int run(int argc, char **argv) {
  cache_args a = {0};
  cli_common_init(&a.com);
  int rc = cli_parse(&cli_cmd_cache, argc, argv, &a.com, cache_opt, &a);
  if (rc == CLI_HELP_SHOWN) return CLI_OK;
  if (rc) return rc;
  const char *what = a.com.npos ? a.com.pos[0] : NULL;
  if (!what) return cli_fail(CLI_USAGE, "missing what to do: list, stats or clear");
  if (a.com.npos > 1) return cli_fail(CLI_USAGE, "unexpected argument '%s'", a.com.pos[1]);
  if (strcmp(what, "list") && strcmp(what, "stats") && strcmp(what, "clear"))
    return cli_fail(CLI_USAGE, "unknown cache action '%s' (valid: list, stats, clear)", what);
  if (a.tuning && strcmp(what, "clear")) return cli_fail(CLI_USAGE, "--tuning goes with clear");
  if (a.longer && strcmp(what, "list")) return cli_fail(CLI_USAGE, "--long goes with list");
  sieve_ctx *ctx;
  if (sieve_open(&ctx) != SIEVE_OK) return cli_fail(CLI_FAIL, "out of memory");
  rc = !strcmp(what, "list") ? list(ctx, &a) : !strcmp(what, "stats") ? stats(ctx) : clear(ctx, &a);
  sieve_close(ctx);
  return rc;
}

const cli_cmd cli_cmd_cache = {
  .name = "cache",
  .summary = "list, measure or clear the disk cache of compiled kernels and block tables",
  .usage = "list|stats|clear [options]",
  .about =
    "Compiled kernels, and the block tables of static patterns, are kept on\n"
    "disk, keyed by everything that changes them (the sources sieve was built\n"
    "from among it), in $SIEVE_CACHE_DIR, else $XDG_CACHE_HOME/sieve, else\n"
    "~/.cache/sieve, and kept under $SIEVE_CACHE_MAX_MB MiB (default 1024) by\n"
    "removing the least recently used. `list` prints one line per entry, newest\n"
    "first: last use, size, pattern (IR hash), shape; for a kernel its dtype,\n"
    "config, target, and the layouts sieve.layout.auto chose where it chose any;\n"
    "for tables the kernel's rows. `stats` prints the directory, the count and\n"
    "size against the limit, and the tuning database. `clear` removes every\n"
    "entry; the tuned configs stay unless --tuning is given.\n"
    "Needs no GPU.",
  .opts = cache_opts,
  .groups = 0,
  .examples =
    "  sieve cache stats\n"
    "  sieve cache list --long\n"
    "  SIEVE_CACHE_DIR=/tmp/k sieve cache clear --tuning\n",
  .run = run,
};
