/*
** Block tables: one table's job, before and after its rows run. What every
** row would otherwise recompute is computed once here: the interfaces'
** intervals per block and per micro-block, the token runs, and which key
** blocks classify alike. Each worker owns its scratch and buffers, sized
** here for the largest block pair, so that rows run on threads without
** locks.
*/
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

static int dedup_init(dedup *h, int64_t n) {
  uint32_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  h->mask = cap - 1;
  h->slot = malloc(sizeof(int32_t) * cap);
  h->gen = calloc(cap, sizeof(uint32_t));
  return h->slot && h->gen ? 0 : -1;
}

/* Tuple buffers: the query block's, and the key blocks' laid out like kr. */
static int tuples_init(worker *w, const job *j) {
  size_t nqv = (size_t)(j->nqv ? j->nqv : 1), nkv = (size_t)(j->nkv ? j->nkv : 1);
  size_t bq = (size_t)j->bq, nk = (size_t)j->kr.n;
  w->tq = (tuples){malloc(sizeof(int64_t) * nqv * bq), malloc(sizeof(int64_t) * bq), j->bq, 0};
  w->tk = (tuples){malloc(sizeof(int64_t) * nkv * nk), malloc(sizeof(int64_t) * nk), j->kr.n, 0};
  w->tq_qb = -1;
  w->tk_n = malloc(sizeof(int64_t) * (size_t)j->nk);
  w->tk_live = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->tk_ok = calloc((size_t)j->nk, 1);
  int64_t most = j->bq > j->bk ? j->bq : j->bk;
  if (dedup_init(&w->h, most)) return -1;
  return w->tq.v && w->tq.w && w->tk.v && w->tk.w && w->tk_n && w->tk_live && w->tk_ok ? 0 : -1;
}

int blk_worker_init(worker *w, job *j) {
  memset(w, 0, sizeof *w);
  w->j = j;
  w->s = cg_scratch_new(j->prog);
  w->is = cg_iscratch_new(j->prog);
  size_t nqv = (size_t)(j->nqv ? j->nqv : 1), nkv = (size_t)(j->nkv ? j->nkv : 1);
  w->lanes = j->bk > PAIR_LANES ? j->bk : PAIR_LANES;
  w->cls = malloc((size_t)j->nk);
  w->dec = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->val = malloc(sizeof(uint64_t) * (size_t)j->nk);
  w->qrow = malloc(sizeof(cg_ival) * nqv);
  w->prev = malloc(sizeof(cg_ival) * nqv);
  w->ql = malloc(sizeof(int64_t) * nqv * (size_t)w->lanes);
  w->kl = malloc(sizeof(int64_t) * nkv * (size_t)w->lanes);
  w->out = malloc(sizeof(int64_t) * (size_t)w->lanes);
  w->mcls = malloc((size_t)(j->bk / MICRO + 2));
  w->mgrid = malloc((size_t)(j->bq / MICRO + 2) * (size_t)(j->bk / MICRO + 2));
  /* Enough lanes for a row's groups or key blocks, or a block pair's micro
  ** pairs. */
  int64_t micro = (int64_t)(j->bq / MICRO + 2) * (j->bk / MICRO + 2);
  w->nlane = j->nk > micro ? j->nk : micro;
  w->lq = calloc((size_t)w->nlane, sizeof(int32_t));
  w->lk = malloc(sizeof(int32_t) * (size_t)w->nlane);
  w->lcls = malloc((size_t)w->nlane);
  w->ldec = malloc(sizeof(uint64_t) * (size_t)w->nlane);
  w->lval = malloc(sizeof(uint64_t) * (size_t)w->nlane);
  if (!w->lq || !w->lk || !w->lcls || !w->ldec || !w->lval) return -1;
  w->scls = malloc((size_t)j->nsk);
  w->upre = malloc(sizeof(int32_t) * (size_t)(j->nsk + 1));
  w->gcls = malloc((size_t)j->ngk);
  w->sgcls = malloc((size_t)j->ngk);
  w->srow = w->cls_srow = -1;
  w->rc = malloc((size_t)j->nk);
  w->und = malloc(sizeof(int32_t) * (size_t)j->nk);
  w->ek = malloc(sizeof(int32_t) * (size_t)j->nk);
  w->rn = malloc(sizeof(int64_t) * (size_t)j->nk);
  w->wsum = malloc(sizeof(int64_t) * (size_t)j->nk);
  w->west = malloc(sizeof(int64_t) * (size_t)j->nk);
  w->wseen = malloc((size_t)j->nk);
  w->wout = j->sample ? malloc(sizeof(int64_t) * (size_t)j->S) : NULL;
  w->rid = malloc(sizeof(int32_t) * (size_t)j->nk);
  w->mbits = malloc(sizeof(uint32_t) * (size_t)(blk_memo_bits(j->memo) ? blk_memo_bits(j->memo) : 1));
  if (!w->scls || !w->upre || !w->ek || !w->gcls || !w->sgcls || !w->rc || !w->und || !w->rn || !w->wsum || !w->west || !w->wseen || (j->sample && !w->wout) ||
      !w->rid || !w->mbits)
    return -1;
  if (j->merge > 1) {
    if (!(w->mcnt = malloc(sizeof(int32_t) * 2 * (size_t)j->nk))) return -1;
    for (int k = 0; k < j->nk; k++) w->mcnt[j->nk + k] = -1;
  }
  w->tokq = malloc(sizeof(int64_t) * nqv * MICRO);
  w->tokk = malloc(sizeof(int64_t) * nkv * MICRO);
  if (tuples_init(w, j)) return -1;
  return w->s && w->is && w->cls && w->dec && w->val && w->qrow && w->prev && w->ql && w->kl &&
                 w->out && w->mcls && w->mgrid && w->tokq && w->tokk
             ? 0 : -1;
}

static void worker_free(worker *w) {
  cg_scratch_free(w->s);
  cg_iscratch_free(w->is);
  for (int i = 0; i < w->nspec; i++) {
    cg_spec_free(w->spec[i].sp);
    free(w->spec[i].ks);
  }
  free(w->h.slot);
  free(w->h.gen);
  free(w->tq.v);
  free(w->tq.w);
  free(w->tk.v);
  free(w->tk.w);
  free(w->tk_n);
  free(w->tk_live);
  free(w->tk_ok);
  free(w->full);
  free(w->part);
  free(w->partm);
  free(w->rid);
  free(w->mcnt);
  free(w->bn);
  blk_lmemo_free(w->lm);
  blk_mcache_free(w->mc);
  free(w->mbits);
  free(w->cls);
  free(w->dec);
  free(w->val);
  free(w->qrow);
  free(w->prev);
  free(w->ql);
  free(w->kl);
  free(w->out);
  free(w->mcls);
  free(w->mgrid);
  free(w->lq);
  free(w->lk);
  free(w->lcls);
  free(w->ldec);
  free(w->lval);
  free(w->scls);
  free(w->upre);
  free(w->gcls);
  free(w->sgcls);
  free(w->rc);
  free(w->und);
  free(w->ek);
  free(w->rn);
  free(w->wout);
  free(w->wsum);
  free(w->west);
  free(w->wseen);
  free(w->tokq);
  free(w->tokk);
  blk_rw_free(w->rw);
}

void blk_job_free(job *j) {
  for (int i = 0; j->w && i < j->nw; i++) worker_free(&j->w[i]);
  free(j->w);
  blk_cset_free(atomic_load(&j->mset));
  blk_cset_free(atomic_load(&j->nset));
  if (j->qtok != j->qr.v) blk_give(j->pool, POOL_QTOK, j->qtok, j->qtok_cap);
  if (j->ktok != j->kr.v) blk_give(j->pool, POOL_KTOK, j->ktok, j->ktok_cap);
  blk_runs_free(&j->qr, j->pool, 0);
  blk_runs_free(&j->kr, j->pool, 1);
  free(j->qiv);
  free(j->kiv);
  free(j->kmap);
  blk_give(j->pool, POOL_QMIV, j->qmiv, j->qmiv_cap);
  blk_give(j->pool, POOL_KMIV, j->kmiv, j->kmiv_cap);
  free(j->qniv);
  free(j->kniv);
  free(j->sqiv);
  free(j->skiv);
  free(j->gkiv);
  free(j->rows);
  blk_reuse_free(j->ru);
  blk_memo_free(j->memo);
}

/*
** Super-blocks: SUPER consecutive blocks, boxed by the hull of their
** blocks' boxes. A super pair the intervals decide decides all its block
** pairs, so most of a sparse table is classified SUPER^2 pairs at a time.
** Key groups (GROUP blocks) are the level between: inside an undecided
** super pair, a group the intervals decide decides its blocks.
*/
static cg_box *super_boxes(const cg_box *b, int nb, int per, int *ns) {
  *ns = (nb + per - 1) / per;
  cg_box *out = malloc(sizeof(cg_box) * (size_t)*ns);
  if (!out) return NULL;
  for (int s = 0; s < *ns; s++) {
    int b0 = s * per, b1 = b0 + per < nb ? b0 + per : nb;
    out[s] = b[b0];
    for (int i = b0 + 1; i < b1; i++)
      for (int v = 0; v < CG_NIN; v++) {
        if (b[i].v[v].lo < out[s].v[v].lo) out[s].v[v].lo = b[i].v[v].lo;
        if (b[i].v[v].hi > out[s].v[v].hi) out[s].v[v].hi = b[i].v[v].hi;
      }
  }
  return out;
}

static int super_prepare(job *j, cg_iscratch *is) {
  cg_box *sq = super_boxes(j->L->qbox, j->nq, SUPER, &j->nsq), *sk = super_boxes(j->L->kbox, j->nk, SUPER, &j->nsk);
  cg_box *gk = super_boxes(j->L->kbox, j->nk, GROUP, &j->ngk);
  size_t nkv = (size_t)(j->nkv ? j->nkv : 1);
  j->sqiv = malloc(sizeof(cg_ival) * (size_t)j->nsq * (size_t)(j->nqv ? j->nqv : 1));
  j->skiv = malloc(sizeof(cg_ival) * (size_t)j->nsk * nkv);
  j->gkiv = malloc(sizeof(cg_ival) * (size_t)j->ngk * nkv);
  int ok = sq && sk && gk && j->sqiv && j->skiv && j->gkiv;
  if (ok) {
    cg_ival_side(j->prog, 0, sq, j->nsq, j->sqiv, j->nsq, is);
    cg_ival_side(j->prog, 1, sk, j->nsk, j->skiv, j->nsk, is);
    cg_ival_side(j->prog, 1, gk, j->ngk, j->gkiv, j->ngk, is);
  }
  free(sq);
  free(sk);
  free(gk);
  return ok ? 0 : -1;
}

/* Mini-blocks' interfaces, from their micro-blocks' boxes: the micro-pair
** cache (cg_blocks_micro.c, for tables with bits) classifies a block
** pair's mini pairs first, looks the undecided ones up, and evaluates the
** micro pairs of those it has not met. Only where blocks are whole
** mini-blocks. Their boxes into *b (freed once the tasks ran), two tasks
** into t; how many tasks, or -1 out of memory. */
static int mini_prepare(job *j, cg_box **b, blk_side *x, blk_task *t) {
  *b = NULL;
  if (!j->bits || !j->micro || j->bq % (MICRO * MINI) || j->bk % (MICRO * MINI)) return 0;
  *b = super_boxes(j->L->mbox, j->L->nm, MINI, &j->nn);
  j->qniv = malloc(sizeof(cg_ival) * (size_t)j->nn * (size_t)(j->nqv ? j->nqv : 1));
  j->kniv = malloc(sizeof(cg_ival) * (size_t)j->nn * (size_t)(j->nkv ? j->nkv : 1));
  if (!*b || !j->qniv || !j->kniv) return -1;
  t[0] = blk_ival_task(&x[0], j->prog, 0, *b, j->nn, j->qniv, j->nn);
  t[1] = blk_ival_task(&x[1], j->prog, 1, *b, j->nn, j->kniv, j->nn);
  return 2;
}

/* Every token's interfaces, for the witness pass and the memo: S * (nqv +
** nkv) int64s, a few MB at the largest shapes, spread from the runs. */
static int64_t *side_tokens(const runs *r, int nv, int64_t S, blk_pool *pl, int slot, size_t *cap) {
  if (r->n == S) return r->v; /* every token its own run: the runs are the tokens */
  int64_t *t = blk_take(pl, slot, sizeof(int64_t) * (size_t)S * (size_t)(nv ? nv : 1), cap);
  if (t) blk_runs_expand(r, nv, S, t);
  return t;
}

static int tokens_prepare(job *j) {
  j->qtok = side_tokens(&j->qr, j->nqv, j->S, j->pool, POOL_QTOK, &j->qtok_cap);
  j->ktok = side_tokens(&j->kr, j->nkv, j->S, j->pool, POOL_KTOK, &j->ktok_cap);
  return j->qtok && j->ktok ? 0 : -1;
}

/* One side's interfaces per micro-block, and its runs: two tasks into t
** (0), or -1 out of memory. */
static int side_prepare(job *j, int key_side, blk_side *x, blk_scan *sc, blk_task *t) {
  int nv = key_side ? j->nkv : j->nqv, bsz = key_side ? j->bk : j->bq, nb = key_side ? j->nk : j->nq;
  cg_ival *miv = blk_take(j->pool, key_side ? POOL_KMIV : POOL_QMIV, sizeof(cg_ival) * (size_t)j->L->nm * (size_t)(nv ? nv : 1),
                          key_side ? &j->kmiv_cap : &j->qmiv_cap);
  *(key_side ? &j->kmiv : &j->qmiv) = miv;
  t[0] = blk_ival_task(x, j->prog, key_side, j->L->mbox, j->L->nm, miv, j->L->nm);
  int st = blk_runs_begin(sc, key_side ? &j->kr : &j->qr, j->pool, j->prog, key_side, &j->L->c, bsz, nb, &t[1]);
  return miv && !st ? 0 : -1;
}

/* What rows read of both sides, per token and per micro- and
** mini-block, made on one set of threads. */
static int sides_prepare(job *j) {
  blk_side x[4];
  blk_scan sc[2] = {{0}, {0}};
  blk_task t[6];
  cg_box *mini = NULL;
  int nt = 4, ok = !side_prepare(j, 0, &x[0], &sc[0], &t[0]);
  ok = !side_prepare(j, 1, &x[1], &sc[1], &t[2]) && ok;
  int nm = ok ? mini_prepare(j, &mini, &x[2], &t[4]) : 0;
  ok = ok && nm >= 0 && !blk_par_tasks(t, nt + nm);
  blk_runs_end(&sc[0], ok);
  blk_runs_end(&sc[1], ok);
  free(mini);
  return ok ? 0 : -1;
}

/*
** Consecutive key blocks with equal interface intervals classify alike in
** every row: each row evaluates them once. Compacts j->kiv in place.
*/
static void merge_key_blocks(job *j) {
  int n = 0;
  for (int kb = 0; kb < j->nk; kb++) {
    int same = n > 0;
    for (int v = 0; v < j->nkv && same; v++) {
      const cg_ival *a = &j->kiv[(int64_t)v * j->nk + kb], *b = &j->kiv[(int64_t)v * j->nk + n - 1];
      same = a->lo == b->lo && a->hi == b->hi;
    }
    if (!same) {
      for (int v = 0; v < j->nkv; v++) j->kiv[(int64_t)v * j->nk + n] = j->kiv[(int64_t)v * j->nk + kb];
      n++;
    }
    j->kmap[kb] = n - 1;
  }
  /* Close the rows up to the new stride. */
  for (int v = 1; v < j->nkv; v++)
    memmove(j->kiv + (int64_t)v * n, j->kiv + (int64_t)v * j->nk, sizeof(cg_ival) * (size_t)n);
  j->nkr = n;
}

/* The most token runs in one block: where every pair has few, counting
** exactly is cheaper than sampling, and no witness pass is prepared. */
static int64_t most_runs(const runs *r, int nb) {
  int64_t m = 0;
  for (int b = 0; b < nb; b++)
    if (r->off[b + 1] - r->off[b] > m) m = r->off[b + 1] - r->off[b];
  return m;
}

/* Everything a row needs, computed once per table. */
int blk_job_prepare(job *j) {
  cg_iscratch *is = cg_iscratch_new(j->prog);
  j->qiv = malloc(sizeof(cg_ival) * (size_t)j->nq * (size_t)(j->nqv ? j->nqv : 1));
  j->kiv = malloc(sizeof(cg_ival) * (size_t)j->nk * (size_t)(j->nkv ? j->nkv : 1));
  j->rows = calloc((size_t)j->nq, sizeof(rowres));
  j->kmap = malloc(sizeof(int32_t) * (size_t)j->nk);
  j->micro = j->bq % MICRO == 0 && j->bk % MICRO == 0;
  int ok = is && j->qiv && j->kiv && j->rows && j->kmap;
  ok = ok && !sides_prepare(j);
  if (ok) {
    cg_ival_side(j->prog, 0, j->L->qbox, j->nq, j->qiv, j->nq, is);
    cg_ival_side(j->prog, 1, j->L->kbox, j->nk, j->kiv, j->nk, is);
    merge_key_blocks(j);
    /* Some pairs have many token runs: the memo, or witnesses once the
    ** memo turns off, need every token's interfaces. */
    int many = most_runs(&j->qr, j->nq) * most_runs(&j->kr, j->nk) > (int64_t)SAMPLES * j->bk;
    j->sample = !j->exact && j->nqv <= 64 && many;
    ok = !super_prepare(j, is) && (!(many || j->bits) || !tokens_prepare(j));
    ok = ok && (!(many || j->bits) || j->no_memo || !blk_memo_new(j, j->bits));
    ok = ok && !blk_reuse_new(j);
  }
  cg_iscratch_free(is);
  return ok ? 0 : -1;
}
