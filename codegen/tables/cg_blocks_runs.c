/*
** Block tables: token runs. Consecutive tokens of a block that agree on
** every interface value the mask reads (cg_eval.h) are one run, so the
** exact count evaluates a block pair once per (query run, key run) rather
** than per token pair; a frame window, which reads only t and text, makes
** a block a few runs.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

void blk_runs_free(runs *r, blk_pool *pl, int key_side) {
  free(r->off);
  blk_give(pl, key_side ? POOL_KV : POOL_QV, r->v, r->vcap);
  blk_give(pl, key_side ? POOL_KW : POOL_QW, r->w, r->wcap);
}

/*
** One pass over the tokens of a side, a chunk at a time. Interface values
** are computed as the pass goes rather than kept per token, which would
** cost S * nv int64s of memory for every table; the runs are recorded at
** a stride of S (untouched pages cost nothing) and closed up after.
*/
static void scan_runs(runs *r, const cg_prog *p, int key_side, const cg_coords *c, int64_t bsz,
                      int64_t *buf, int64_t *prev, cg_scratch *s) {
  int nv = key_side ? cg_prog_nkv(p) : cg_prog_nqv(p);
  int64_t i = -1, ld = c->n, at = 0, b = 0; /* at: the token's place in block b (no division per token) */
  for (int64_t o = 0; o < c->n; o += CG_CHUNK) {
    int64_t len = c->n - o < CG_CHUNK ? c->n - o : CG_CHUNK;
    cg_prog_side(p, key_side, c, o, len, buf, CG_CHUNK, s);
    for (int64_t t = 0; t < len; t++) {
      int first = at == 0, st = first;
      if (++at == bsz) at = 0;
      for (int j = 0; j < nv; j++) {
        st |= buf[j * CG_CHUNK + t] != prev[j];
        prev[j] = buf[j * CG_CHUNK + t];
      }
      if (st) {
        i++;
        if (first) r->off[b++] = i;
        for (int j = 0; j < nv; j++) r->v[j * ld + i] = prev[j];
        r->w[i] = 0;
      }
      r->w[i]++;
    }
  }
  r->n = i + 1;
  for (int j = 1; j < nv; j++) memmove(r->v + j * r->n, r->v + j * ld, sizeof(int64_t) * (size_t)r->n);
}

int blk_runs_build(runs *r, blk_pool *pl, const cg_prog *p, int key_side, const cg_coords *c, int64_t bsz,
                   int nb, cg_scratch *s) {
  int nv = key_side ? cg_prog_nkv(p) : cg_prog_nqv(p);
  size_t n = (size_t)(nv ? nv : 1);
  int64_t *buf = malloc(sizeof(int64_t) * n * CG_CHUNK), *prev = calloc(n, sizeof(int64_t));
  r->off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
  /* Kept at full size for the next table's runs, which may be more. */
  r->v = blk_take(pl, key_side ? POOL_KV : POOL_QV, sizeof(int64_t) * (size_t)(c->n ? c->n : 1) * n, &r->vcap);
  r->w = blk_take(pl, key_side ? POOL_KW : POOL_QW, sizeof(int64_t) * (size_t)(c->n ? c->n : 1), &r->wcap);
  int ok = buf && prev && r->off && r->v && r->w;
  if (ok) {
    scan_runs(r, p, key_side, c, bsz, buf, prev, s);
    r->off[nb] = r->n;
  }
  free(buf);
  free(prev);
  return ok ? 0 : -1;
}

/* Every token's interfaces, [nv][S], from the runs: no evaluation. */
void blk_runs_expand(const runs *r, int nv, int64_t S, int64_t *tok) {
  for (int j = 0; j < nv; j++) {
    int64_t *d = tok + j * S;
    const int64_t *v = r->v + j * r->n;
    for (int64_t i = 0, p = 0; i < r->n; i++)
      for (int64_t k = 0; k < r->w[i]; k++) d[p++] = v[i];
  }
}
