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
** Runs on threads, a part of whole blocks to each: a block's first token
** always starts a run, so parts find their runs independently. Interface
** values are computed as a part goes rather than kept per token, which
** would cost S * nv int64s of memory for every table; each part records
** its runs at a stride of S from its own first token (a part of n tokens
** has at most n runs; untouched pages cost nothing), and the runs are
** closed up after, a block at a time.
*/
static int scan_part(void *ctx, int64_t b0, int64_t b1) {
  const blk_scan *x = ctx;
  runs *r = x->r;
  int nv = x->nv;
  int64_t ld = x->c->n, t0 = b0 * x->bsz, t1 = b1 * x->bsz < ld ? b1 * x->bsz : ld;
  int64_t *buf = malloc(sizeof(int64_t) * (size_t)(nv ? nv : 1) * CG_CHUNK), *prev = calloc((size_t)(nv ? nv : 1), sizeof(int64_t));
  cg_scratch *s = cg_scratch_new(x->p);
  if (!buf || !prev || !s) {
    free(buf);
    free(prev);
    cg_scratch_free(s);
    return -1;
  }
  int64_t i = t0 - 1, at = 0, b = b0; /* at: the token's place in block b (no division per token) */
  for (int64_t o = t0; o < t1; o += CG_CHUNK) {
    int64_t len = t1 - o < CG_CHUNK ? t1 - o : CG_CHUNK;
    cg_prog_side(x->p, x->key_side, x->c, o, len, buf, CG_CHUNK, s);
    for (int64_t t = 0; t < len; t++) {
      int first = at == 0, st = first;
      if (++at == x->bsz) at = 0;
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
  for (int64_t k = b0; k < b1; k++) x->cnt[k] = (k + 1 < b1 ? r->off[k + 1] : i + 1) - r->off[k];
  free(buf);
  free(prev);
  cg_scratch_free(s);
  return 0;
}

/* Each block's runs moved down to follow the block before's, then each
** interface's to follow the one before's. */
static void close_up(runs *r, int nv, int64_t ld, int nb, const int64_t *cnt) {
  int64_t n = 0;
  for (int b = 0; b < nb; b++) {
    int64_t from = r->off[b];
    if (from != n) {
      for (int j = 0; j < nv; j++) memmove(r->v + j * ld + n, r->v + j * ld + from, sizeof(int64_t) * (size_t)cnt[b]);
      memmove(r->w + n, r->w + from, sizeof(int64_t) * (size_t)cnt[b]);
    }
    r->off[b] = n;
    n += cnt[b];
  }
  r->n = n;
  r->off[nb] = n;
  for (int j = 1; j < nv; j++) memmove(r->v + j * n, r->v + j * ld, sizeof(int64_t) * (size_t)n);
}

int blk_runs_begin(blk_scan *x, runs *r, blk_pool *pl, const cg_prog *p, int key_side, const cg_coords *c,
                   int64_t bsz, int nb, blk_task *t) {
  int nv = key_side ? cg_prog_nkv(p) : cg_prog_nqv(p);
  size_t n = (size_t)(nv ? nv : 1);
  *x = (blk_scan){r, p, key_side, nv, c, bsz, nb, malloc(sizeof(int64_t) * (size_t)(nb ? nb : 1))};
  r->off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
  /* Kept at full size for the next table's runs, which may be more. */
  r->v = blk_take(pl, key_side ? POOL_KV : POOL_QV, sizeof(int64_t) * (size_t)(c->n ? c->n : 1) * n, &r->vcap);
  r->w = blk_take(pl, key_side ? POOL_KW : POOL_QW, sizeof(int64_t) * (size_t)(c->n ? c->n : 1), &r->wcap);
  int64_t g = blk_grain(p, key_side) / bsz;
  *t = (blk_task){scan_part, x, nb, g > 1 ? g : 1};
  return x->cnt && r->off && r->v && r->w ? 0 : -1;
}

void blk_runs_end(blk_scan *x, int ok) {
  if (ok) close_up(x->r, x->nv, x->c->n, x->nb, x->cnt);
  free(x->cnt);
  x->cnt = NULL;
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
