/*
** Block tables: bitmasks for partial blocks. A kernel that evaluates a
** long predicate on every element of a partial block spends most of its
** time there (a radial mask: 81% of visited blocks partial, 0.11x of dense
** speed). Where that predicate costs more per element than reading a bit,
** the table carries, per partial block, an index into a set of distinct
** block_q x block_k bitmasks (row r, word w, bit b: column 32 w + b; tokens
** past the sequence 0), and the kernel applies the bits instead.
**
** The choice is per head class (cg_bits_classes): the predicate's work per
** (query, key) pair, the QK phase of its compiled program (cg_eval.h: what
** is left once per-row and per-column parts are hoisted), against a bit's
** cost, a load of block_q * block_k / 8 bytes per block (1.6% of K and V at
** 64 x 64, D = 128) and a shift and test per element. Plain frame windows
** stay on predicates. Only static masks take bitmasks: a mask that reads
** the step or layer gets its tables from the GPU builder, and searched or
** profiled selections write tables of their own.
**
** Rows run on threads; equal block pairs are evaluated once (below), and
** distinct bitmasks are kept once.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

/* ------------------------------------------------------------ the choice */

int cg_bits_pair_ops(cg_pattern *p, const sieve_shape *shape, int cls) {
  if (cls < 0 || cls >= p->nclasses) return -1;
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  cg_shape_vars(p->g, &s, map);
  cg_ref m = cg_subst(p->g, p->classes[cls].mask, map);
  cg_prog *pr = m == CG_NONE ? NULL : cg_prog_new(p->g, m);
  if (!pr) return -1;
  int n = pr->qk.nins;
  cg_prog_free(pr);
  return n;
}

static int class_used(const cg_pattern *p, int c) {
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] == c) return 1;
  return 0;
}

/* The cost's choice (auto) unless SIEVE_PARTIAL asks for predicates or
** bitmasks everywhere. */
cg_bits_mode cg_bits_mode_env(void) {
  const char *s = getenv("SIEVE_PARTIAL");
  if (s && !strcmp(s, "predicate")) return CG_BITS_NEVER;
  if (s && !strncmp(s, "bitmask", 7)) return CG_BITS_ALWAYS;
  return CG_BITS_COST;
}

uint32_t cg_bits_env(cg_pattern *p, const sieve_shape *shape) {
  const char *s = getenv("SIEVE_PARTIAL");
  uint32_t only = s && !strncmp(s, "bitmask:", 8) ? (uint32_t)strtoul(s + 8, NULL, 16) : ~0u;
  return cg_bits_classes(p, shape, cg_bits_mode_env()) & only;
}

uint32_t cg_bits_classes(cg_pattern *p, const sieve_shape *shape, cg_bits_mode mode) {
  if (mode == CG_BITS_NEVER || p->sel.kind != CG_SELECT_STATIC || p->nclasses > 32 || p->nclasses < 1 ||
      p->period < 1 || !p->head_class)
    return 0;
  int bk = cg_pattern_block_k(p);
  if (bk % 32) return 0;
  uint32_t out = 0;
  for (int c = 0; c < p->nclasses; c++) {
    uint32_t vars = cg_vars_used(p->g, p->classes[c].mask);
    if (vars & (1u << CG_V_STEP | 1u << CG_V_LAYER)) return 0; /* the GPU builder's tables */
    if (!class_used(p, c)) continue;
    int ops = cg_bits_pair_ops(p, shape, c);
    if (ops < 1) continue; /* true or false everywhere, or a mask of one side only: no partial blocks to speak of */
    if (mode == CG_BITS_ALWAYS || ops > CG_BITS_PAIR_OPS) out |= 1u << c;
  }
  return out;
}

/* ------------------------------------------------------ distinct bitmasks */

typedef struct bitset {
  pthread_mutex_t mu;
  blk_bitset b;
  int wpb;             /* words per bitmask */
  int fail;
} bitset;

static int64_t intern(bitset *b, const uint32_t *w) { return blk_intern(&b->b, w); }

/* From the memo (cg_blocks_memo.c), which kept each distinct bitmask
** once as it evaluated the pairs. */
sieve_status blk_bits_from_memo(cg_tableset *ts, cg_table *t, blk_memo *m, int32_t *pm) {
  blk_bitset *set = blk_memo_set(m);
  t->ent_words = 2;
  t->nbitmasks = set->n;
  t->nbitw = set->n * set->wpb;
  t->bitw = blk_bitset_adopt(set, ts->arena);
  if (!t->bitw) return SIEVE_ERR_NOMEM;
  t->part_bits = pm;
  t->bits = 1;
  return SIEVE_OK;
}

/* ------------------------------------------------------------- the rows */
/*
** A block pair's bits are a function of three things: which of the
** predicate's instructions the pair's intervals decide (dec, val: the
** program specialised to the pair, cg_spec), and the live interface values
** of its query tokens and of its key tokens, in order. Pairs that agree on
** all three have equal bits, so each distinct (dec, val, query sequence,
** key sequence) is evaluated once: a radial mask's ~600,000 partial blocks
** on hunyuan-720p are some thousands of distinct ones, since a block's
** (y, x) sequence repeats every few frames and its frame distance
** specialises away. Sequences are keyed by two 64-bit hashes each (a
** collision among the few thousand keys of a table is ~1e-30 likely).
*/
#define BSPEC_CACHE 64

typedef struct memo_ent {
  uint64_t dec, val, hq[2], hk[2];
  int32_t num;
} memo_ent;

typedef struct bjob {
  const cg_prog *prog;
  const cg_table *t;
  int64_t S;
  int bq, bk, nqv, nkv;
  int64_t *qtok, *ktok;  /* interfaces of every token: [nqv][S], [nkv][S] */
  cg_ival *qiv, *kiv;    /* interface intervals per block: [nqv][nq], [nkv][nk] */
  cg_ival *qmiv, *kmiv;  /* ... per micro-block, [nv][nm], where blocks are whole micro-blocks; else NULL */
  int nm;
  int32_t *num;          /* per partial entry: its bitmask's number */
  bitset set;            /* the bitmasks, and (under set.mu) the memo */
  memo_ent *memo;
  uint64_t mmask;
  int64_t nmemo;
  atomic_int next;
} bjob;

typedef struct bworker {
  bjob *j;
  cg_scratch *s;
  cg_iscratch *is;
  int64_t *ql, *kl, *out;  /* lanes: [nqv][bq bk], [nkv][bq bk], [bq bk] */
  uint32_t *bits;          /* one block's bitmask */
  int32_t *lq, *lk;        /* each lane's query row and key column in the block */
  uint8_t *cls, *mcls;
  uint64_t *dec, *val;     /* per partial block of the row */
  struct { uint64_t dec, val; cg_spec *sp; } spec[BSPEC_CACHE];
  int nspec;
  uint64_t *kh;            /* per key block: hashes [2] of its live sequence under klive kl_live */
  uint64_t *kh_live;
  uint8_t *kh_ok;
  int fail;
} bworker;

static const cg_spec *bspec(bworker *w, uint64_t dec, uint64_t val) {
  for (int i = 0; i < w->nspec; i++)
    if (w->spec[i].dec == dec && w->spec[i].val == val) return w->spec[i].sp;
  if (w->nspec == BSPEC_CACHE) {
    for (int i = 0; i < w->nspec; i++) cg_spec_free(w->spec[i].sp);
    w->nspec = 0;
  }
  cg_spec *sp = cg_spec_new(w->j->prog, dec, val);
  if (sp) {
    w->spec[w->nspec].dec = dec;
    w->spec[w->nspec].val = val;
    w->spec[w->nspec++].sp = sp;
  }
  return sp;
}

static uint64_t mix64(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

/* Hashes of tokens [p0, p1)'s live interfaces (tok: [nv][S]). */
static void seq_hash(const bjob *j, const int64_t *tok, int nv, uint64_t live, int64_t p0, int64_t p1, uint64_t h[2]) {
  uint64_t a = 0x243f6a8885a308d3ull ^ (uint64_t)(p1 - p0), b = 0x13198a2e03707344ull + (uint64_t)(p1 - p0);
  for (int v = 0; v < nv; v++) {
    if (v < 64 && !(live >> v & 1)) continue;
    const int64_t *x = tok + (int64_t)v * j->S;
    a = mix64(a, (uint64_t)v);
    for (int64_t p = p0; p < p1; p++) {
      a = mix64(a, (uint64_t)x[p]);
      b = b * 0x100000001b3ull ^ (uint64_t)x[p] ^ (b >> 27);
    }
  }
  h[0] = a;
  h[1] = mix64(b, a);
}

static memo_ent *memo_find(bjob *j, const memo_ent *k, uint64_t *slot) {
  uint64_t i = mix64(mix64(mix64(k->dec, k->val), k->hq[0] ^ k->hk[1]), k->hk[0] ^ k->hq[1]) & j->mmask;
  for (; j->memo[i].num >= 0; i = (i + 1) & j->mmask) {
    memo_ent *m = &j->memo[i];
    if (m->dec == k->dec && m->val == k->val && m->hq[0] == k->hq[0] && m->hq[1] == k->hq[1] &&
        m->hk[0] == k->hk[0] && m->hk[1] == k->hk[1])
      return m;
  }
  *slot = i;
  return NULL;
}

static int memo_grow(bjob *j) {
  uint64_t cap = (j->mmask + 1) * 2;
  memo_ent *m = malloc(sizeof(memo_ent) * cap), *old = j->memo;
  if (!m) return -1;
  for (uint64_t i = 0; i < cap; i++) m[i].num = -1;
  uint64_t omask = j->mmask;
  j->memo = m;
  j->mmask = cap - 1;
  for (uint64_t i = 0; i <= omask; i++) {
    uint64_t s;
    if (old[i].num >= 0 && !memo_find(j, &old[i], &s)) m[s] = old[i];
  }
  free(old);
  return 0;
}

/*
** The block pair's bits. Where blocks are whole micro-blocks, micro pairs
** the intervals decide are filled at once and only the others are
** evaluated, token by token, through the specialised program.
*/
static void eval_block(bworker *w, const cg_spec *sp, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  bjob *j = w->j;
  int64_t lanes = (int64_t)j->bq * j->bk, n = 0;
  int wpr = j->bk / 32, nm = j->nm;
  memset(w->bits, 0, sizeof(uint32_t) * (size_t)j->set.wpb);
  int64_t m0 = k0 / MICRO, m1 = (k1 + MICRO - 1) / MICRO;
  int64_t nqm = j->qmiv ? (q1 - q0 + MICRO - 1) / MICRO : 1;
  for (int64_t im = 0; im < nqm; im++) {
    int64_t a0 = j->qmiv ? q0 + im * MICRO : q0, a1 = j->qmiv && a0 + MICRO < q1 ? a0 + MICRO : q1;
    if (j->qmiv) {
      cg_ival qrow[64];
      for (int v = 0; v < j->nqv; v++) qrow[v] = j->qmiv[(int64_t)v * nm + a0 / MICRO];
      cg_ival_row(j->prog, qrow, j->kmiv + m0, nm, (int)(m1 - m0), w->mcls, w->is);
    }
    for (int64_t mk = j->qmiv ? m0 : 0; mk < (j->qmiv ? m1 : 1); mk++) {
      int64_t b0 = j->qmiv ? mk * MICRO : k0, b1 = j->qmiv && b0 + MICRO < k1 ? b0 + MICRO : k1;
      int c = j->qmiv ? w->mcls[mk - m0] : CG_BLK_UNDECIDED;
      if (c == CG_BLK_EMPTY) continue;
      for (int64_t a = a0; a < a1; a++)
        for (int64_t b = b0; b < b1; b++) {
          if (c == CG_BLK_FULL) {
            int64_t x = b - k0;
            w->bits[(a - q0) * wpr + (x >> 5)] |= 1u << (x & 31);
            continue;
          }
          for (int v = 0; v < j->nqv; v++) w->ql[v * lanes + n] = j->qtok[(int64_t)v * j->S + a];
          for (int v = 0; v < j->nkv; v++) w->kl[v * lanes + n] = j->ktok[(int64_t)v * j->S + b];
          w->lq[n] = (int32_t)(a - q0);
          w->lk[n++] = (int32_t)(b - k0);
        }
    }
  }
  if (!n) return;
  if (sp) cg_spec_pairs(j->prog, sp, w->ql, lanes, w->kl, lanes, (int)n, w->out, w->s);
  else cg_prog_pairs(j->prog, w->ql, lanes, w->kl, lanes, (int)n, w->out, w->s);
  for (int64_t i = 0; i < n; i++)
    if (w->out[i]) w->bits[w->lq[i] * wpr + (w->lk[i] >> 5)] |= 1u << (w->lk[i] & 31);
}

static void row_bits(bworker *w, int qb) {
  bjob *j = w->j;
  const cg_table *t = j->t;
  int32_t p0 = t->part_ptr[qb], np = t->part_ptr[qb + 1] - p0;
  if (!np) return;
  const int32_t *kbs = t->part_idx + p0;
  int64_t q0 = (int64_t)qb * j->bq, q1 = q0 + j->bq < j->S ? q0 + j->bq : j->S;
  cg_ival qrow[64];
  for (int v = 0; v < j->nqv; v++) qrow[v] = j->qiv[(int64_t)v * t->nq + qb];
  for (int i = 0; i < np;) {
    int e = i + 1;
    while (e < np && kbs[e] == kbs[e - 1] + 1) e++;
    cg_ival_row_sig(j->prog, qrow, j->kiv + kbs[i], t->nk, e - i, w->cls, w->dec + i, w->val + i, w->is);
    i = e;
  }
  uint64_t qlive_h = 0, hq[2] = {0, 0};
  int have_q = 0;
  for (int b = 0; b < np && !w->fail; b++) {
    int kb = kbs[b];
    int64_t k0 = (int64_t)kb * j->bk, k1 = k0 + j->bk < j->S ? k0 + j->bk : j->S;
    const cg_spec *sp = bspec(w, w->dec[b], w->val[b]);
    uint64_t ql = sp ? sp->qlive : ~0ull, kl = sp ? sp->klive : ~0ull;
    if (!have_q || qlive_h != ql) {
      seq_hash(j, j->qtok, j->nqv, ql, q0, q1, hq);
      qlive_h = ql;
      have_q = 1;
    }
    if (!w->kh_ok[kb] || w->kh_live[kb] != kl) {
      seq_hash(j, j->ktok, j->nkv, kl, k0, k1, w->kh + 2 * (int64_t)kb);
      w->kh_live[kb] = kl;
      w->kh_ok[kb] = 1;
    }
    memo_ent key = {sp ? w->dec[b] : ~0ull, sp ? w->val[b] : ~0ull, {hq[0], hq[1]},
                    {w->kh[2 * (int64_t)kb], w->kh[2 * (int64_t)kb + 1]}, -1};
    uint64_t slot;
    pthread_mutex_lock(&j->set.mu);
    memo_ent *m = memo_find(j, &key, &slot);
    int32_t num = m ? m->num : -1;
    pthread_mutex_unlock(&j->set.mu);
    if (num < 0) {
      eval_block(w, sp, q0, q1, k0, k1);
      pthread_mutex_lock(&j->set.mu);
      int64_t k = intern(&j->set, w->bits);
      if (k < 0 || k > INT32_MAX) j->set.fail = 1;
      else {
        num = (int32_t)k;
        if ((uint64_t)(j->nmemo + 1) * 2 > j->mmask + 1 && memo_grow(j)) j->set.fail = 1;
        else if (!memo_find(j, &key, &slot)) {
          key.num = num;
          j->memo[slot] = key;
          j->nmemo++;
        }
      }
      pthread_mutex_unlock(&j->set.mu);
      if (num < 0) w->fail = 1;
    }
    j->num[p0 + b] = num;
  }
}

static void *bwork(void *arg) {
  bworker *w = arg;
  bjob *j = w->j;
  for (;;) {
    int qb = atomic_fetch_add(&j->next, 1);
    if (qb >= j->t->nq || w->fail || j->set.fail) break;
    row_bits(w, qb);
  }
  return NULL;
}

static int worker_init(bworker *w, bjob *j) {
  int64_t lanes = (int64_t)j->bq * j->bk, nk = j->t->nk;
  w->j = j;
  w->s = cg_scratch_new(j->prog);
  w->is = cg_iscratch_new(j->prog);
  w->ql = malloc(sizeof(int64_t) * (size_t)(lanes * (j->nqv ? j->nqv : 1)));
  w->kl = malloc(sizeof(int64_t) * (size_t)(lanes * (j->nkv ? j->nkv : 1)));
  w->out = malloc(sizeof(int64_t) * (size_t)lanes);
  w->bits = malloc(sizeof(uint32_t) * (size_t)j->set.wpb);
  w->cls = malloc((size_t)nk);
  w->mcls = malloc((size_t)(j->bk / MICRO + 2));
  w->lq = malloc(sizeof(int32_t) * (size_t)lanes);
  w->lk = malloc(sizeof(int32_t) * (size_t)lanes);
  w->dec = malloc(sizeof(uint64_t) * (size_t)nk);
  w->val = malloc(sizeof(uint64_t) * (size_t)nk);
  w->kh = malloc(sizeof(uint64_t) * 2 * (size_t)nk);
  w->kh_live = malloc(sizeof(uint64_t) * (size_t)nk);
  w->kh_ok = calloc((size_t)nk, 1);
  return w->s && w->is && w->ql && w->kl && w->out && w->bits && w->cls && w->mcls && w->lq && w->lk && w->dec && w->val && w->kh &&
                 w->kh_live && w->kh_ok
             ? 0 : -1;
}

static void worker_free(bworker *w) {
  cg_scratch_free(w->s);
  cg_iscratch_free(w->is);
  for (int i = 0; i < w->nspec; i++) cg_spec_free(w->spec[i].sp);
  free(w->ql);
  free(w->kl);
  free(w->out);
  free(w->bits);
  free(w->cls);
  free(w->mcls);
  free(w->lq);
  free(w->lk);
  free(w->dec);
  free(w->val);
  free(w->kh);
  free(w->kh_live);
  free(w->kh_ok);
}

static int run_rows(bjob *j) {
  int nw = blk_threads(j->t->nq), fail = 0;
  bworker *w = calloc((size_t)nw, sizeof(bworker));
  if (!w) return -1;
  for (int i = 0; i < nw; i++) fail |= worker_init(&w[i], j);
  atomic_init(&j->next, 0);
  if (!fail) blk_on_threads(nw, bwork, w, sizeof *w);
  for (int i = 0; i < nw; i++) {
    fail |= w[i].fail;
    worker_free(&w[i]);
  }
  free(w);
  return fail || j->set.fail ? -1 : 0;
}

sieve_status blk_build_bits(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e) {
  t->ent_words = 2;
  t->bits = 1;
  t->part_bits = cg_alloc(ts->arena, sizeof(int32_t) * (size_t)(t->npart ? t->npart : 1));
  if (!t->part_bits) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory building bitmasks");
  if (t->npart == 0) return SIEVE_OK;
  bjob j = {.t = t, .S = ts->seq, .bq = ts->block_q, .bk = ts->block_k};
  j.set.wpb = j.set.b.wpb = ts->block_q * (ts->block_k / 32);
  pthread_mutex_init(&j.set.mu, NULL);
  cg_prog *prog = cg_prog_new(g, t->mask);
  sieve_status st = SIEVE_ERR_NOMEM;
  if (prog) {
    cg_prog_bind(prog, 0, 0, 0);  /* head, step and layer are constants in t->mask */
    j.prog = prog;
    j.nqv = cg_prog_nqv(prog);
    j.nkv = cg_prog_nkv(prog);
    size_t S = (size_t)ts->seq, nqv = (size_t)(j.nqv ? j.nqv : 1), nkv = (size_t)(j.nkv ? j.nkv : 1);
    j.qtok = malloc(sizeof(int64_t) * S * nqv);
    j.ktok = malloc(sizeof(int64_t) * S * nkv);
    j.qiv = malloc(sizeof(cg_ival) * (size_t)t->nq * nqv);
    j.kiv = malloc(sizeof(cg_ival) * (size_t)t->nk * nkv);
    j.num = malloc(sizeof(int32_t) * (size_t)t->npart);
    j.mmask = 1023;
    j.memo = malloc(sizeof(memo_ent) * (j.mmask + 1));
    cg_scratch *s = cg_scratch_new(prog);
    cg_iscratch *is = cg_iscratch_new(prog);
    if (j.nqv <= 64 && j.qtok && j.ktok && j.qiv && j.kiv && j.num && j.memo && s && is) {
      for (uint64_t i = 0; i <= j.mmask; i++) j.memo[i].num = -1;
      cg_prog_side(prog, 0, &L->c, 0, ts->seq, j.qtok, ts->seq, s);
      cg_prog_side(prog, 1, &L->c, 0, ts->seq, j.ktok, ts->seq, s);
      cg_ival_side(prog, 0, L->qbox, t->nq, j.qiv, t->nq, is);
      cg_ival_side(prog, 1, L->kbox, t->nk, j.kiv, t->nk, is);
      j.nm = L->nm;
      if (j.bq % MICRO == 0 && j.bk % MICRO == 0) {
        j.qmiv = malloc(sizeof(cg_ival) * (size_t)L->nm * nqv);
        j.kmiv = malloc(sizeof(cg_ival) * (size_t)L->nm * nkv);
        if (j.qmiv && j.kmiv) {
          cg_ival_side(prog, 0, L->mbox, L->nm, j.qmiv, L->nm, is);
          cg_ival_side(prog, 1, L->mbox, L->nm, j.kmiv, L->nm, is);
        } else {
          free(j.qmiv);
          free(j.kmiv);
          j.qmiv = j.kmiv = NULL;
        }
      }
      if (!run_rows(&j)) st = SIEVE_OK;
    }
    cg_scratch_free(s);
    cg_iscratch_free(is);
  }
  if (!st) {
    t->nbitmasks = j.set.b.n;
    t->nbitw = j.set.b.n * j.set.wpb;
    t->bitw = blk_bitset_adopt(&j.set.b, ts->arena);
    if (!t->bitw) st = SIEVE_ERR_NOMEM;
    else {
      for (int64_t i = 0; i < t->npart; i++) t->part_bits[i] = (int32_t)((int64_t)j.num[i] * j.set.wpb);
    }
  }
  cg_prog_free(prog);
  free(j.qtok);
  free(j.ktok);
  free(j.qiv);
  free(j.kiv);
  free(j.qmiv);
  free(j.kmiv);
  free(j.memo);
  free(j.num);
  blk_bitset_free(&j.set.b);
  pthread_mutex_destroy(&j.set.mu);
  return st ? cg_fail(e, st, "out of memory building bitmasks") : SIEVE_OK;
}
