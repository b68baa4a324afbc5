/*
** Block-table build time on a real model shape, for every shipped pattern.
**
**   bench_tables [--shape NAME] [--runs N] [--check] [-p KEY=VALUE]... [PATTERN_DIR | FILE.lua]
**
** PATTERN_DIR defaults to $SIEVE_SOURCE_DIR/patterns, then ./patterns; a
** .lua file is benched alone. -p sets a script param (every script in the
** directory must know it, so give params with one file). NAME is a preset
** or T,Y,X,TEXT,AFTER,HEADS (a ragged grid, text after the video with
** AFTER 1).
** When no pattern loads, frame windows built directly in the IR stand in.
** SIEVE_THREADS sets the builder's threads (default: online CPUs).
** Prints, per pattern, the median build time over N runs (wall, as the
** library reports it, and the process's CPU time, which other load on the
** machine does not inflate), the head-average density, and block counts
** summed over the distinct tables. --check also builds each pattern's
** tables the plain way, without the block-pair memo and without rows
** reused under translation (CG_TABLES_NO_MEMO, CG_TABLES_NO_REUSE),
** bitmasks as SIEVE_PARTIAL asks, says whether lists and bits agree
** (cg_tables_differ), and prints a
** digest of them to compare builds from two commits by.
*/
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_patterns.h"
#include "cg_blocks.h"
#include "lp.h"

typedef struct result {
  double ms, cpu_ms;
  sieve_tables_info info;
  double density;
  int64_t full, partial, empty;
} result;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return v[n / 2];
}

/* Head-average density and block counts over distinct tables. */
static void summarise(const sieve_tables *t, result *r) {
  sieve_tables_info_get(t, &r->info);
  r->density = 0;
  r->full = r->partial = r->empty = 0;
  for (int i = 0; i < r->info.tables; i++) {
    sieve_table_view v;
    sieve_tables_view(t, i, &v);
    r->full += v.full_blocks;
    r->partial += v.partial_blocks;
    r->empty += v.empty_blocks;
  }
  for (int h = 0; h < r->info.heads; h++) {
    sieve_table_view v;
    sieve_tables_view(t, sieve_tables_head_table(t, h), &v);
    r->density += v.density / r->info.heads;
  }
}

static int bench(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *s, int runs, result *r) {
  double *ms = malloc(sizeof(double) * (size_t)runs), *cpu = malloc(sizeof(double) * (size_t)runs);
  for (int i = 0; i < runs; i++) {
    sieve_tables *t;
    double c0 = cpu_ms();
    if (sieve_tables_build(ctx, p, s, 0, 0, &t) != SIEVE_OK) {
      free(ms);
      free(cpu);
      return -1;
    }
    cpu[i] = cpu_ms() - c0;
    sieve_tables_info info;
    sieve_tables_info_get(t, &info);
    ms[i] = info.build_ms;
    if (i == runs - 1) summarise(t, r);
    sieve_tables_free(t);
  }
  r->ms = median(ms, runs);
  r->cpu_ms = median(cpu, runs);
  free(ms);
  free(cpu);
  return 0;
}

static void print_header(const sieve_shape *s, const char *name, int runs) {
  printf("shape %s: T%d Y%d X%d text %d, %d heads, %lld tokens; median of %d builds\n\n", name,
         s->frames, s->height, s->width, s->text, s->heads, (long long)sieve_shape_tokens(s), runs);
  printf("| pattern | tables | build ms | cpu ms | density | full | partial | empty | interval undecided | "
         "refined full/empty/partial |\n");
  printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
}

static void print_row(const char *name, const result *r) {
  printf("| %s | %d | %.2f | %.2f | %.4f | %lld | %lld | %lld | %lld | %lld/%lld/%lld |\n", name,
         r->info.tables, r->ms, r->cpu_ms, r->density, (long long)r->full, (long long)r->partial,
         (long long)r->empty,
         (long long)r->info.interval_undecided, (long long)r->info.refined_full,
         (long long)r->info.refined_empty, (long long)r->info.refined_partial);
}

/* --------------------------------------------- IR frame windows (fallback) */

static cg_pattern *frame_window(int w) {
  cg_pattern *p = cg_pattern_new();
  cg_graph *g = p->g;
  cg_ref d = cg_un(g, CG_ABS, cg_bin(g, CG_SUB, cg_var_ref(g, CG_V_QT), cg_var_ref(g, CG_V_KT)));
  cg_ref m = cg_bin(g, CG_OR, cg_bin(g, CG_LE, d, cg_const(g, w)),
                    cg_bin(g, CG_OR, cg_var_ref(g, CG_V_QTEXT), cg_var_ref(g, CG_V_KTEXT)));
  p->name = w == 1 ? "ir_frame_window_1" : "ir_frame_window_3";
  p->nclasses = 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class));
  p->classes[0] = (cg_class){.name = "all", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = m};
  p->period = 1;
  p->head_class = cg_alloc(p->arena, sizeof(int));
  return p;
}

/* The same measurement through the internal builder, for patterns that did
** not come from a script. */
static int bench_ir(cg_pattern *p, const sieve_shape *s, int runs, result *r) {
  double *ms = malloc(sizeof(double) * (size_t)runs), *cpu = malloc(sizeof(double) * (size_t)runs);
  cg_err e = {0};
  for (int i = 0; i < runs; i++) {
    cg_tableset *t;
    double c0 = cpu_ms();
    if (cg_tables_build(p, s, 0, 0, &t, &e) != SIEVE_OK) {
      fprintf(stderr, "%s: %s\n", p->name, e.msg);
      free(ms);
      free(cpu);
      return -1;
    }
    cpu[i] = cpu_ms() - c0;
    ms[i] = t->build_ms;
    memset(r, 0, sizeof *r);
    r->info = (sieve_tables_info){.heads = s->heads, .tables = t->ntables,
                                  .interval_undecided = t->interval_undecided,
                                  .refined_full = t->refined_full, .refined_empty = t->refined_empty,
                                  .refined_partial = t->refined_partial};
    for (int k = 0; k < t->ntables; k++) {
      r->full += t->tables[k].nfull;
      r->partial += t->tables[k].npart;
      r->empty += t->tables[k].nempty;
    }
    for (int h = 0; h < s->heads; h++)
      r->density += (double)t->tables[t->head_table[h]].allowed_pairs / ((double)t->seq * t->seq) / s->heads;
    cg_tables_free(t);
  }
  r->ms = median(ms, runs);
  r->cpu_ms = median(cpu, runs);
  free(ms);
  free(cpu);
  return 0;
}

/* ------------------------------------------- fast paths against none */

/* FNV-1a over a table's lists and partial blocks' bits: builds from two
** commits agree when their digests do. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t digest(const cg_tableset *ts) {
  uint64_t h = 0xcbf29ce484222325ull;
  int wpb = ts->block_q * (ts->block_k / 32);
  for (int i = 0; i < ts->ntables; i++) {
    const cg_table *t = &ts->tables[i];
    size_t np = sizeof(int32_t) * (size_t)(t->nq + 1);
    h = fnv(h, t->full_ptr, np);
    h = fnv(h, t->part_ptr, np);
    h = fnv(h, t->full_idx, sizeof(int32_t) * (size_t)t->nfull);
    h = fnv(h, t->part_idx, sizeof(int32_t) * (size_t)t->npart);
    for (int64_t k = 0; t->bits && k < t->npart; k++)
      h = fnv(h, t->bitw + t->part_bits[k], sizeof(uint32_t) * (size_t)wpb);
  }
  return h;
}

static void check(const sieve_pattern *sp, const sieve_shape *s) {
  cg_pattern *p = lp_pattern_ir(sp);
  uint32_t bits = cg_bits_env(p, s);
  cg_tableset *a = NULL, *b = NULL;
  cg_err e = {0};
  char why[256] = "the build failed";
  int ok = cg_tables_build_bits(p, s, 0, 0, 0, bits, &a, &e) == SIEVE_OK &&
           cg_tables_build_bits(p, s, 0, 0, CG_TABLES_NO_MEMO | CG_TABLES_NO_REUSE, bits, &b, &e) == SIEVE_OK &&
           !cg_tables_differ(a, b, why, sizeof why);
  printf("  %s: tables with and without the memo and row reuse %s (bit classes %x; %.1f against %.1f ms; digest %016llx)\n",
         sieve_pattern_name(sp), ok ? "agree" : "DIFFER", bits, a ? a->build_ms : 0, b ? b->build_ms : 0,
         a ? (unsigned long long)digest(a) : 0ull);
  if (!ok) printf("    %s\n", why);
  cg_tables_free(a);
  cg_tables_free(b);
}

/* ------------------------------------------------------------------- main */

#define MAX_PARAMS 16

static int bench_file(sieve_ctx *ctx, const char *path, const char *const *params, const sieve_shape *s, int runs,
                      int chk) {
  sieve_pattern *p;
  result r;
  int done = 0;
  if (sieve_pattern_load(ctx, path, params, &p) != SIEVE_OK) {
    fprintf(stderr, "%s: %s\n", path, sieve_errmsg(ctx));
    return 0;
  }
  if (bench(ctx, p, s, runs, &r)) fprintf(stderr, "%s: %s\n", path, sieve_errmsg(ctx));
  else print_row(sieve_pattern_name(p), &r), done = 1;
  if (chk) check(p, s);
  sieve_pattern_free(p);
  return done;
}

static int bench_dir(sieve_ctx *ctx, const char *dir, const char *const *params, const sieve_shape *s, int runs,
                     int chk) {
  size_t len = strlen(dir);
  if (len > 4 && !strcmp(dir + len - 4, ".lua")) return bench_file(ctx, dir, params, s, runs, chk);
  struct dirent **ents;
  int n = scandir(dir, &ents, bench_lua_file, alphasort), done = 0;
  for (int i = 0; i < n; i++) {
    char path[4096 + 256];
    snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    done += bench_file(ctx, path, params, s, runs, chk);
    free(ents[i]);
  }
  if (n > 0) free(ents);
  return done;
}

int main(int argc, char **argv) {
  const char *shape_name = "hunyuan-720p", *dir = NULL;
  int runs = 9, chk = 0, np = 0;
  const char *params[MAX_PARAMS + 1] = {NULL};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_name = argv[++i];
    else if (!strcmp(argv[i], "-p") && i + 1 < argc && np < MAX_PARAMS) params[np++] = argv[++i];
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--check")) chk = 1;
    else dir = argv[i];
  }
  char buf[4096];
  if (!dir && getenv("SIEVE_SOURCE_DIR")) {
    snprintf(buf, sizeof buf, "%s/patterns", getenv("SIEVE_SOURCE_DIR"));
    dir = buf;
  }
  if (!dir) dir = "patterns";
  sieve_shape s = {.batch = 1, .head_dim = 128};
  sieve_ctx *ctx;
  int custom = sscanf(shape_name, "%d,%d,%d,%d,%d,%d", &s.frames, &s.height, &s.width, &s.text, &s.text_after,
                      &s.heads) == 6;
  if (runs < 1 || (!custom && sieve_shape_preset(shape_name, &s) != SIEVE_OK) || sieve_open(&ctx) != SIEVE_OK) {
    fprintf(stderr, "usage: bench_tables [--shape NAME] [--runs N] [--check] [-p KEY=VALUE]... "
                    "[PATTERN_DIR | FILE.lua]\n");
    return 2;
  }
  print_header(&s, shape_name, runs);
  if (bench_dir(ctx, dir, params, &s, runs, chk) == 0) {
    for (int w = 1; w <= 3; w += 2) {
      cg_pattern *p = frame_window(w);
      result r;
      if (!bench_ir(p, &s, runs, &r)) print_row(p->name, &r);
      cg_pattern_free(p);
    }
  }
  sieve_close(ctx);
  return 0;
}
