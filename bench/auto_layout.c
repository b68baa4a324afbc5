/*
** sieve.layout.auto against the layouts patterns fix: for every pattern
** script given (or in $SIEVE_SOURCE_DIR/patterns), each class is switched
** to auto and its choice printed beside the visited block area of the
** identity layout and of the layout the script declares, all on one shape
** (step 0, layer 0, the class's first head). Visited area: full blocks
** plus partial ones at 1.25, over all block pairs, as the chooser scores.
**
**   auto_layout [-s SHAPE] [PATTERN.lua ...]
*/
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_patterns.h"
#include "cg_blocks.h"
#include "lp.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Visited area of class c's table, as a share of all block pairs. */
static double visited(cg_pattern *p, const sieve_shape *s, int c) {
  cg_tableset *ts;
  cg_err e = {0};
  if (cg_tables_build(p, s, 0, 0, &ts, &e)) {
    fprintf(stderr, "%s: %s\n", p->name, e.msg);
    return -1;
  }
  int h = 0;
  while (p->head_class[h % p->period] != c) h++;
  const cg_table *t = &ts->tables[ts->head_table[h]];
  double v = ((double)t->nfull + 1.25 * (double)t->npart) / ((double)t->nq * t->nk);
  cg_tables_free(ts);
  return v;
}

static int one(sieve_ctx *ctx, const char *path, void *shape) {
  const sieve_shape *s = shape;
  sieve_pattern *sp;
  if (sieve_pattern_load(ctx, path, NULL, &sp)) {
    fprintf(stderr, "%s: %s\n", path, sieve_errmsg(ctx));
    return 1;
  }
  cg_pattern *p = lp_pattern_ir(sp);
  for (int c = 0; c < p->nclasses; c++) {
    int used = 0;
    for (int r = 0; r < p->period; r++) used |= p->head_class[r] == c;
    if (!used) continue;
    cg_layout own = p->classes[c].layout;
    char on[64], an[64];
    cg_layout_text(&own, on, sizeof on);
    double vo = visited(p, s, c);
    p->classes[c].layout = (cg_layout){.kind = CG_LAYOUT_IDENTITY};
    double vi = visited(p, s, c);
    uint8_t *flags = p->auto_layout;
    p->auto_layout = calloc((size_t)p->nclasses, 1);
    p->auto_layout[c] = 1;
    p->autos = NULL;
    double t0 = now_ms();
    cg_err e = {0};
    if (cg_layouts_resolve(p, s, &e)) fprintf(stderr, "%s: %s\n", path, e.msg);
    double ms = now_ms() - t0;
    cg_layout_text(&p->classes[c].layout, an, sizeof an);
    double va = visited(p, s, c);
    const char *rank = cg_layouts_ranking(p, s, c);
    printf("| %s | %s | %s %.2f%% | identity %.2f%% | %s %.2f%% | %.0f | %s |\n", p->name, p->classes[c].name, on,
           100 * vo, 100 * vi, an, 100 * va, ms, rank ? rank : "-");
    fflush(stdout);
    free(p->auto_layout);
    p->auto_layout = flags;
    p->autos = NULL;
    p->classes[c].layout = own;
  }
  sieve_pattern_free(sp);
  return 0;
}

int main(int argc, char **argv) {
  const char *shape = "hunyuan-720p";
  int c;
  while ((c = getopt(argc, argv, "s:")) != -1) {
    if (c == 's') shape = optarg;
    else {
      fprintf(stderr, "usage: auto_layout [-s SHAPE] [PATTERN.lua ...]\n");
      return 2;
    }
  }
  sieve_shape s;
  sieve_ctx *ctx;
  if (sieve_shape_preset(shape, &s) || sieve_open(&ctx)) return 2;
  printf("shape %s; visited block area (partial blocks at 1.25) of the class's first head, step 0\n\n", shape);
  printf("| pattern | class | own layout | identity | auto | choosing ms | ranking (rows sampled) |\n");
  printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  int bad = bench_each_pattern(ctx, argc, argv, optind, one, &s);
  sieve_close(ctx);
  return bad;
}
