/*
** Automatic layouts (sieve.layout.auto). For a class that asks for one,
** the table builder scores candidate layouts on the shape at hand and keeps
** the cheapest: identity, transpose, and 3-D tiles of a few shapes sized
** against the blocks (ragged grids get ragged last tiles, as tile layouts
** always do). A candidate's cost is the block area the kernel would visit,
** a partial block weighted PARTIAL_COST times a full one, since it also
** evaluates the mask per element.
**
** Candidates are ranked on every few query-block rows, exactly, except
** that one whose lower bound (cg_layout_bound.c, far cheaper than a score)
** passes the best score so far is left out: most are. The others' bounds,
** their open pairs settled, are their exact scores (settled only as far
** as the best so far: take). The best is then
** checked against identity on every row, exactly, so auto never visits
** more than identity would; the table builder builds the choice's tables
** before that check, which counts the choice from them rather than
** building it twice, while identity's side of the check, on enough
** threads, builds beside them and stops once their score is known. The
** choice depends on the shape only (step and layer 0, the class's first
** head), so that the kernel, compiled once, and tables built at any step
** agree; it is made once per shape and kept in the pattern.
**
** On a plan's copy at merged query rows, that check counts identity from
** its table at the script's blocks, merged (blk_score_layout's m): a build
** at merged rows of a layout other than the choice costs several times
** one at the script's blocks (radial at hunyuan-720p, 192-token rows:
** 620 ms against 85).
*/
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks_int.h"

/* In quarters (BLK_PARTIAL_COST4), the identity check's stop is an integer. */
#define PARTIAL_COST (BLK_PARTIAL_COST4 / 4.0)
#define RANK_ROWS 64   /* query-block rows a candidate is ranked on, about */
#define GUESS_STRIDE 16 /* the order is guessed on every GUESS_STRIDE-th row ranked */
#define SHOWN 4        /* runners-up cg_layouts_ranking names */
/* Threads a check beside the build takes at least (blk_layouts_start).
** On a 16-core host, radial_auto `tsink=true` at hunyuan-720p, whose
** temporal check cannot stop early, at 8 threads: 408 ms unbounded,
** 1135-1283 with one thread a check, 696 with two, 401 with four. */
#define CHECK_THREADS 4

typedef struct cand {
  cg_layout l;
  double lo, hi;  /* visited area over the rows scored, in full-block units: bounds, equal once exact */
  int open;       /* settling stopped once past the best (take): lo a bound, hi infinite */
} cand;

struct cg_auto {
  struct cg_auto *next;
  /* The choice is a function of the grid and the blocks: a copy of the
  ** pattern at other blocks (a kernel's merged query rows) chooses anew,
  ** whatever the original chose before it, so the layout a kernel and its
  ** cache key stand for does not depend on what ran earlier. */
  int frames, height, width, text, text_after;
  int block_q, block_k;
  cg_layout *chosen;   /* [nclasses] */
  const char **rank;   /* [nclasses]: the choice and its runners-up, NULL for fixed layouts */
  /* [nclasses], while the table builder holds the entry (blk_layouts_resolve):
  ** the choice still to be checked against identity on every row, and the
  ** ranking should identity win that check */
  uint8_t *check;
  const char **rank_id;
  /* [nclasses], while checks run beside the build (blk_layouts_start):
  ** identity's scorer on every row, or NULL */
  blk_scorer **idsc;
};

static int is_auto(const cg_pattern *p, int c) { return p->auto_layout && p->auto_layout[c]; }

static int same_key(const struct cg_auto *a, const cg_pattern *p, const sieve_shape *s) {
  return a->frames == s->frames && a->height == s->height && a->width == s->width && a->text == s->text &&
         a->text_after == s->text_after && a->block_q == cg_pattern_block_q(p) && a->block_k == cg_pattern_block_k(p);
}

static struct cg_auto *entry(const cg_pattern *p, const sieve_shape *s) {
  for (struct cg_auto *a = p->autos; a; a = a->next)
    if (same_key(a, p, s)) return a;
  return NULL;
}

static int any_auto(const cg_pattern *p) {
  for (int c = 0; c < p->nclasses; c++)
    if (is_auto(p, c)) return 1;
  return 0;
}

void cg_layout_text(const cg_layout *l, char *buf, size_t n) {
  if (l->kind == CG_LAYOUT_TILE) snprintf(buf, n, "tile{%d,%d,%d}", l->tile[0], l->tile[1], l->tile[2]);
  else snprintf(buf, n, "%s", cg_layout_name(l->kind));
}

/* Identity, transpose, then tiles whose volume fits the blocks. */
static int candidates(const cg_pattern *p, const sieve_shape *s, cand *out) {
  static const int T[] = {1, 2, 4, 6}, Y[] = {4, 8}, X[] = {4, 8, 16};
  int bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);
  int lo = bq < bk ? bq : bk, hi = bq < bk ? bk : bq, n = 0;
  out[n++].l = (cg_layout){.kind = CG_LAYOUT_IDENTITY};
  out[n++].l = (cg_layout){.kind = CG_LAYOUT_TRANSPOSE};
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 3; c++) {
        int t = T[a] < s->frames ? T[a] : s->frames, y = Y[b] < s->height ? Y[b] : s->height;
        int x = X[c] < s->width ? X[c] : s->width, v = t * y * x, dup = 0;
        if ((v % lo && lo % v) || v > 4 * hi || v * 4 < lo) continue;
        for (int i = 2; i < n; i++)
          dup |= out[i].l.tile[0] == t && out[i].l.tile[1] == y && out[i].l.tile[2] == x;
        if (!dup) out[n++].l = (cg_layout){.kind = CG_LAYOUT_TILE, .tile = {t, y, x}};
      }
  return n;
}

/* Exact, by building the layout's table on the rows scored; with stop (in
** quarters of a full block: BLK_PARTIAL_COST4 a partial one) the build
** may stop past it, *stopped, leaving a lower bound in lo. */
static sieve_status score_stop(cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *c, int stride, int64_t stop4,
                               blk_pool *pool, int *stopped, cg_err *e) {
  int64_t full, part;
  sieve_status st = blk_score_layout(p, s, mask, &c->l, stride, 1, stop4, pool, &full, &part, stopped, e);
  c->lo = c->hi = (double)full + PARTIAL_COST * (double)part;
  return st;
}

static sieve_status score(cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *c, int stride, blk_pool *pool,
                          cg_err *e) {
  int stopped;
  return score_stop(p, s, mask, c, stride, 0, pool, &stopped, e);
}

/* order[0, n) by guess, then by index: n is small. */
static void by_guess(const double *guess, int *order, int n) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && guess[order[k]] < guess[order[k - 1]]; k--) {
      int a = order[k];
      order[k] = order[k - 1];
      order[k - 1] = a;
    }
}

/*
** rank's candidates taken in order: each bounded on all the rows, the
** bound stopping once past the best exact score so far (none for the
** first), and scored exactly only when it stays at or under it: the bound
** with the pairs it left open settled, or else a build. Those never scored
** cannot win; they keep their bound, hi infinite. *moved: a candidate
** other than the first was best at some point. With rec, the bounds are
** read from b's record (blk_bound_record), else made (the tests' way).
**
** Settling a candidate other than identity stops once past the best
** score so far as well (open): settling only adds, so it cannot win, and
** the best and every later stop are what settling it whole would give.
** The ranking then shows it with that bound (">="). Settling on to show
** runners-up exact cost about a tenth of radial_auto's cold tables.
** Identity is always shown, with its score: its bound never stops and it
** settles whole, so that `sieve show` tells what the choice saves (radial
** at hunyuan-720p: identity 27.7% of the block area, the choice 20.7%,
** where a bound stopped at the best would show ">=20.9%"). With full,
** every settling runs to the score (the tests').
*/
static sieve_status take(blk_lbound *b, int rec, cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *cs,
                         const int *order, int n, int stride, int full, int *best, int *moved, cg_err *e) {
  sieve_status st = SIEVE_OK;
  int exact;
  for (int k = 0; k < n; k++) {
    cs[k].hi = INFINITY;
    cs[k].open = 0;
  }
  *best = -1;
  *moved = 0;
  for (int k = 0; k < n && !st; k++) {
    cand *c = &cs[order[k]];
    double stop = *best >= 0 ? cs[*best].lo : INFINITY;
    /* identity is shown with its score (ranking()), beside which the
    ** choice is judged: its bound runs on past the best */
    int whole = !order[k];
    double bstop = whole ? INFINITY : stop;
    st = rec ? blk_bound_replay(b, order[k], 1, PARTIAL_COST, bstop, &c->lo, &exact, e)
             : blk_bound_layout(b, &c->l, stride, PARTIAL_COST, bstop, &c->lo, &exact, e);
    /* at the best score, an earlier candidate keeps the tie */
    if (st || (!whole && *best >= 0 && (c->lo > stop || (c->lo == stop && order[k] > *best)))) continue;
    /* the bound ran every row: what it left unsettled, settled, is the score */
    double tau = full || whole ? INFINITY : stop;
    if (!exact) st = blk_bound_exact(b, PARTIAL_COST, tau, &c->lo, &exact);
    if (!st && !exact && c->lo > tau) {
      c->open = 1; /* hi stays infinite */
      continue;
    }
    if (!st && !exact) st = score(p, s, mask, c, stride, NULL, e);
    else c->hi = c->lo;
    if (!st && (*best < 0 || c->lo < cs[*best].lo || (c->lo == cs[*best].lo && order[k] < *best))) {
      *moved |= k > 0;
      *best = order[k];
    }
  }
  return st;
}

/*
** The cheapest of n candidates on the rows that are multiples of stride,
** identity (cs[0]) on ties, then the earliest, as exact scores of all
** would rank them. Every candidate's bound on those rows is made first,
** each on a thread of its own, less its rows past the least score that a
** candidate bounded whole can reach (blk_bound_record; a stop the rows
** kept do not pass is made anew); the candidates
** are then taken (take) in the order of their bounds on every
** GUESS_STRIDE-th of the rows, their guesses, read from those, so that
** the likely best comes first and the others' bounds stop at its score:
** the order decides only how soon take's stop falls and what settling
** costs, since the first's score stops the rest. With full, the bounds
** are made one by one as take asks (the tests' check on the record).
** *moved: the guesses misled (a later candidate beat the first).
*/
static sieve_status rank(cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *cs, int n, int stride, int full,
                         int *best, int *moved, cg_err *e) {
  blk_lbound *b = blk_lbound_new(p, s, mask);
  if (!b) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory bounding layouts' block areas");
  cg_layout ls[2 + 24];
  for (int i = 0; i < n; i++) ls[i] = cs[i].l;
  sieve_status st = full ? SIEVE_OK : blk_bound_record(b, ls, n, stride, GUESS_STRIDE, PARTIAL_COST, e);
  int order[2 + 24], exact;
  double guess[2 + 24];
  for (int i = 0; i < n && !st; i++)
    st = full ? blk_bound_layout(b, &cs[i].l, stride * GUESS_STRIDE, PARTIAL_COST, INFINITY, &guess[i], &exact, e)
              : blk_bound_replay(b, i, GUESS_STRIDE, PARTIAL_COST, INFINITY, &guess[i], &exact, e);
  by_guess(guess, order, n);
  if (!st) st = take(b, !full, p, s, mask, cs, order, n, stride, full, best, moved, e);
  blk_lbound_free(b);
  return st;
}

/* Layout l's scorer on every row (blk_scorer_start): on a copy at
** merged rows, from its table at the script's blocks, merged. */
static sieve_status rows_start(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int64_t stop4,
                               int thread, blk_pool *pool, blk_scorer **sc, cg_err *e) {
  int bq = cg_pattern_block_q(p), from = p->merged_from, had = p->block_q;
  int m = from <= 0 || from >= bq || bq % from ? 1 : bq / from;
  if (m > 1) p->block_q = from; /* the build's blocks, read by the start alone */
  sieve_status st = blk_scorer_start(p, s, mask, l, 1, m, stop4, thread, pool, sc, e);
  p->block_q = had;
  return st;
}

/* Its score into c, the build stopped past stop4 (*stopped). */
static sieve_status rows_finish(blk_scorer *sc, int64_t stop4, cand *c, int *stopped, cg_err *e) {
  int64_t full, part;
  sieve_status st = blk_scorer_finish(sc, stop4, &full, &part, stopped, e);
  c->lo = c->hi = (double)full + PARTIAL_COST * (double)part;
  return st;
}

/*
** Whether layout l visits less than identity on every row: the ranking's
** rows may miss what they skip. l's score on every row is lo when known
** (the table builder's table of it), else NAN. Identity's build stops
** once its rows so far visit more than l's all: rows only add. It is
** *id when started already (blk_layouts_start), which this finishes,
** else it starts here. The builds take buffers from pool (or NULL).
*/
static sieve_status confirm(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, double lo,
                            blk_scorer **id, blk_pool *pool, int *wins, cg_err *e) {
  cand a = {.l = {.kind = CG_LAYOUT_IDENTITY}}, b = {.l = *l, .lo = lo};
  blk_scorer *sc = id ? *id : NULL;
  if (id) *id = NULL;
  sieve_status st = isnan(lo) ? score(p, s, mask, &b, 1, pool, e) : SIEVE_OK;
  int64_t stop4 = st ? -1 : (int64_t)(4 * b.lo);
  if (!st && !sc) st = rows_start(p, s, mask, &a.l, stop4, 0, pool, &sc, e);
  int stopped = 0;
  sieve_status fin = rows_finish(sc, stop4, &a, &stopped, st ? NULL : e);
  if (!st) st = fin;
  *wins = stopped || b.lo < a.lo;
  return st;
}

static int by_lo(const void *x, const void *y) {
  const cand *a = *(const cand *const *)x, *b = *(const cand *const *)y;
  return (a->lo > b->lo) - (a->lo < b->lo);
}

/* The choice, then identity, then the cheapest others, as shares of the
** rows' pairs: exact scores, or ">=" and the bound of those not scored.
** With best identity and ranked another (the ranking's best, which the
** check on every row turned down), the choice says so. */
static const char *ranking(cg_arena *arena, cand *cs, int n, int best, int ranked, double pairs) {
  cand *rest[2 + 24], *order[SHOWN + 1];
  int m = 0, nr = 0;
  order[m++] = &cs[best];
  if (best) order[m++] = &cs[0];
  for (int i = 1; i < n; i++)
    if (i != best) rest[nr++] = &cs[i];
  qsort(rest, (size_t)nr, sizeof *rest, by_lo);
  for (int i = 0; i < nr && m < SHOWN + 1; i++) order[m++] = rest[i];
  char buf[640], name[64], val[64], tag[128] = " (chosen)";
  int len = 0;
  if (ranked != best) {
    cg_layout_text(&cs[ranked].l, name, sizeof name);
    snprintf(tag, sizeof tag, " (chosen: on all rows it visits less than %s, the least on these)", name);
  }
  for (int i = 0; i < m; i++) {
    cg_layout_text(&order[i]->l, name, sizeof name);
    snprintf(val, sizeof val, "%s%.2f%%", order[i]->lo == order[i]->hi ? "" : ">=", 100.0 * order[i]->lo / pairs);
    len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s %s%s", i == 1 ? "; runners-up " : i ? ", " : "",
                    name, val, i == 0 ? tag : "");
    if (len >= (int)sizeof buf) break;
  }
  return cg_strdup(arena, buf);
}

/* Class c's mask as it is ranked: its first head (classes are checked
** used), step and layer 0, the shape's sizes; *h that head. */
static cg_ref class_mask(cg_pattern *p, const sieve_shape *s, int c, int *h) {
  *h = 0;
  while (p->head_class[*h] != c) (*h)++;
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  map[CG_V_HEAD] = cg_const(p->g, *h);
  map[CG_V_STEP] = cg_const(p->g, 0);
  map[CG_V_LAYER] = cg_const(p->g, 0);
  cg_shape_vars(p->g, s, map);
  return cg_subst(p->g, p->classes[c].mask, map);
}

/*
** A class's ranking (rank), which runs on a thread of its own beside the
** other classes' (resolve): its mask is made before, as making one adds
** to p's graph, and nothing of p is written. A class's bounds keep its
** threads busy only while it has candidates left to bound, and its
** settling is a few dozen rows; two classes side by side fill the gaps of
** each other.
*/
typedef struct pick {
  cg_pattern *p;
  const sieve_shape *s;
  cg_ref mask;
  cand cs[2 + 24];
  int n, best, stride;
  sieve_status st;
  cg_err e;
} pick;

static void pick_rank(pick *k) {
  int64_t nq = (sieve_shape_tokens(k->s) + cg_pattern_block_q(k->p) - 1) / cg_pattern_block_q(k->p);
  int moved;
  k->n = candidates(k->p, k->s, k->cs);
  k->stride = nq / RANK_ROWS > 1 ? (int)(nq / RANK_ROWS) : 1;
  k->best = 0;
  k->st = rank(k->p, k->s, k->mask, k->cs, k->n, k->stride, 0, &k->best, &moved, &k->e);
}

/* The picks a region's threads take in turn (rank_all). */
typedef struct picks {
  pick *ks;
  int n, threads; /* threads: the caller's bound, each ranking's (blk_threads_cap) */
  atomic_int next;
} picks;

static void *picks_run(void *arg) {
  picks *q = arg;
  int was = blk_threads_cap(q->threads);
  for (int i; (i = atomic_fetch_add(&q->next, 1)) < q->n;) pick_rank(&q->ks[i]);
  blk_threads_cap(was); /* the caller's own, where this is the caller */
  return NULL;
}

/* Class c's choice, ranked (k), into a, and its ranking as text; with
** defer, a choice that needs the check against identity on every row is
** marked for it instead (the table builder's build of the choice counts
** it). */
static sieve_status choose(pick *k, int c, int defer, struct cg_auto *a, cg_err *e) {
  cg_pattern *p = k->p;
  const sieve_shape *s = k->s;
  cand *cs = k->cs;
  int n = k->n, best = k->best, stride = k->stride;
  int bq = cg_pattern_block_q(p), bk = cg_pattern_block_k(p);
  int64_t nq = (sieve_shape_tokens(s) + bq - 1) / bq, nk = (sieve_shape_tokens(s) + bk - 1) / bk;
  /* block_k may differ from block_q: a share of the rows' pairs is only indicative */
  double pairs = (double)((nq + stride - 1) / stride) * (double)nk;
  a->chosen[c] = cs[best].l;
  a->rank[c] = ranking(p->arena, cs, n, best, best, pairs);
  if (!a->rank[c]) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  if (!best || stride == 1) return SIEVE_OK;
  if (!(a->rank_id[c] = ranking(p->arena, cs, n, 0, best, pairs))) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  int wins = 1;
  sieve_status st = SIEVE_OK;
  if (defer) a->check[c] = 1;
  else st = confirm(p, s, k->mask, &cs[best].l, NAN, NULL, NULL, &wins, e);
  if (!wins) {
    a->chosen[c] = cs[0].l;
    a->rank[c] = a->rank_id[c];
  }
  return st;
}

/* The rankings of n picks, each on a thread of its own where there are
** threads (a thread that does not start leaves its pick to the others). */
static void rank_all(pick *ks, int n) {
  if (!n) return;
  picks q = {.ks = ks, .n = n, .threads = blk_threads(MAX_THREADS)};
  atomic_init(&q.next, 0);
  blk_on_threads(n < q.threads ? n : q.threads, picks_run, &q, 0);
}

static void apply(cg_pattern *p, const struct cg_auto *a) {
  for (int c = 0; c < p->nclasses; c++)
    if (is_auto(p, c)) p->classes[c].layout = a->chosen[c];
}

/* An entry for shape s at p's blocks, its arrays zeroed (no choice, no
** ranking, nothing to check); NULL out of memory. */
static struct cg_auto *new_entry(cg_pattern *p, const sieve_shape *s) {
  size_t nc = (size_t)(p->nclasses ? p->nclasses : 1);
  struct cg_auto *a = cg_alloc(p->arena, sizeof *a);
  if (!a) return NULL;
  *a = (struct cg_auto){.frames = s->frames, .height = s->height, .width = s->width, .text = s->text,
                        .text_after = s->text_after, .block_q = cg_pattern_block_q(p), .block_k = cg_pattern_block_k(p)};
  a->chosen = cg_alloc(p->arena, sizeof(cg_layout) * nc);
  a->rank = cg_alloc(p->arena, sizeof(char *) * nc);
  a->check = cg_alloc(p->arena, nc);
  a->rank_id = cg_alloc(p->arena, sizeof(char *) * nc);
  a->idsc = cg_alloc(p->arena, sizeof(blk_scorer *) * nc);
  if (!a->chosen || !a->rank || !a->check || !a->rank_id || !a->idsc) return NULL;
  memset(a->chosen, 0, sizeof(cg_layout) * nc);
  memset(a->rank, 0, sizeof(char *) * nc);
  memset(a->check, 0, nc);
  memset(a->rank_id, 0, sizeof(char *) * nc);
  memset(a->idsc, 0, sizeof(blk_scorer *) * nc);
  return a;
}

static sieve_status resolve(cg_pattern *p, const sieve_shape *shape, int defer, struct cg_auto **checked,
                            cg_err *e) {
  if (!any_auto(p)) return SIEVE_OK;
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  struct cg_auto *had = entry(p, &s);
  if (had) {
    apply(p, had);
    return SIEVE_OK;
  }
  struct cg_auto *a = new_entry(p, &s);
  if (!a) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  pick *ks = calloc((size_t)p->nclasses + 1, sizeof *ks);
  int *of = calloc((size_t)p->nclasses + 1, sizeof *of), nk = 0, pending = 0;
  if (!ks || !of) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int c = 0; c < p->nclasses && !st; c++) {
    a->chosen[c] = p->classes[c].layout;
    a->rank[c] = a->rank_id[c] = NULL;
    a->check[c] = 0;
    int used = 0, h;
    for (int r = 0; r < p->period; r++) used |= p->head_class[r] == c;
    of[c] = -1;
    if (is_auto(p, c) && used) {
      ks[nk] = (pick){.p = p, .s = &s, .mask = class_mask(p, &s, c, &h)};
      if (ks[nk].mask == CG_NONE) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
      of[c] = nk++;
    } else if (is_auto(p, c))
      a->chosen[c] = (cg_layout){.kind = CG_LAYOUT_IDENTITY};
  }
  if (!st) rank_all(ks, nk);
  for (int c = 0; c < p->nclasses && !st; c++) {
    if (of[c] < 0) continue;
    pick *k = &ks[of[c]];
    if (k->st && e) *e = k->e;
    st = k->st ? k->st : choose(k, c, defer, a, e);
    pending |= a->check[c];
  }
  free(ks);
  free(of);
  if (st) return st;
  apply(p, a);
  if (pending) {
    *checked = a; /* kept once checked (blk_layouts_check) */
    return SIEVE_OK;
  }
  a->next = p->autos;
  p->autos = a;
  return SIEVE_OK;
}

sieve_status cg_layouts_resolve(cg_pattern *p, const sieve_shape *shape, cg_err *e) {
  return resolve(p, shape, 0, NULL, e);
}

sieve_status blk_layouts_resolve(cg_pattern *p, const sieve_shape *shape, struct cg_auto **checked, cg_err *e) {
  *checked = NULL;
  return resolve(p, shape, 1, checked, e);
}

/*
** The checks of a's choices against identity on every row, each started
** on a thread of its own, to run while the table builder builds the
** choices' tables (shape as the builder has it); their stops come with
** those tables (blk_layouts_check). Worth it where the build has threads
** to spare: a table's rows do not keep many busy (ROW_THREADS). The
** checks share the threads those leave, CHECK_THREADS each at least.
** Unbounded, each took as many as the rows: two checks beside a table's
** rows on 16 cores made 24 threads, and the rows waited for cores. A
** check on fewer threads becomes the plan's critical path where identity
** is close to the choice and its build cannot stop early.
*/
sieve_status blk_layouts_start(cg_pattern *p, struct cg_auto *a, const sieve_shape *shape, cg_err *e) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = SIEVE_OK;
  int n = 0, t = blk_threads(MAX_THREADS);
  for (int c = 0; c < p->nclasses; c++) n += a->check[c];
  int cap = n && (t - ROW_THREADS) / n > CHECK_THREADS ? (t - ROW_THREADS) / n : CHECK_THREADS;
  for (int c = 0; c < p->nclasses && !st; c++) {
    if (!a->check[c]) continue;
    int h;
    cg_ref mask = class_mask(p, &s, c, &h);
    cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
    st = mask == CG_NONE ? cg_fail(e, SIEVE_ERR_NOMEM, "out of memory")
                         : rows_start(p, &s, mask, &id, 0, cap, NULL, &a->idsc[c], e);
  }
  if (st) blk_layouts_stop(p, a);
  return st;
}

void blk_layouts_stop(cg_pattern *p, struct cg_auto *a) {
  for (int c = 0; c < p->nclasses; c++) {
    int64_t full, part;
    int stopped;
    blk_scorer_finish(a->idsc[c], -1, &full, &part, &stopped, NULL);
    a->idsc[c] = NULL;
  }
}

/*
** The check against identity on every row of the choices a holds, with ts
** the tables just built under them: a class's table of its first head is
** the table the check scores when its mask is the one ranked (step and
** layer 0, or a mask that reads neither), so it is not built twice.
*/
sieve_status blk_layouts_check(cg_pattern *p, struct cg_auto *a, const cg_tableset *ts, blk_pool *pool, int *rebuild,
                               cg_err *e) {
  *rebuild = 0;
  sieve_status st = SIEVE_OK;
  for (int c = 0; c < p->nclasses && !st; c++) {
    if (!a->check[c]) continue;
    int h, wins = 1;
    cg_ref mask = class_mask(p, &ts->shape, c, &h);
    if (mask == CG_NONE) {
      st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
      break;
    }
    double lo = NAN;
    const cg_table *t = h < ts->shape.heads ? &ts->tables[ts->head_table[h]] : NULL;
    if (t && t->mask == mask && blk_same_layout(&p->classes[t->cls].layout, &a->chosen[c]))
      lo = (double)t->nfull + PARTIAL_COST * (double)t->npart;
    st = confirm(p, &ts->shape, mask, &a->chosen[c], lo, &a->idsc[c], pool, &wins, e);
    if (!st && !wins) {
      a->chosen[c] = (cg_layout){.kind = CG_LAYOUT_IDENTITY};
      a->rank[c] = a->rank_id[c];
      *rebuild = 1;
    }
  }
  blk_layouts_stop(p, a);
  if (st) return st;
  memset(a->check, 0, (size_t)p->nclasses);
  apply(p, a);
  a->next = p->autos;
  p->autos = a;
  return SIEVE_OK;
}

/* The tests' checks below: class c's bound state on shape, then
** check(b, candidate, ...) for each candidate, summing its mismatches; -1
** when anything fails. */
typedef int (*cand_check)(blk_lbound *b, cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *x, int stride,
                          cg_err *e);

static int check_candidates(cg_pattern *p, const sieve_shape *shape, int c, int stride, cand_check check) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  int h, bad = 0;
  cg_ref mask = class_mask(p, &s, c, &h);
  blk_lbound *b = mask == CG_NONE ? NULL : blk_lbound_new(p, &s, mask);
  if (!b) return -1;
  cand cs[2 + 24];
  int n = candidates(p, &s, cs);
  cg_err e = {0};
  for (int i = 0; i < n && bad >= 0; i++) {
    int r = check(b, p, &s, mask, &cs[i], stride, &e);
    bad = r < 0 ? -1 : bad + r;
  }
  blk_lbound_free(b);
  return bad;
}

/* A settled bound against the exact score. */
static int settled_is_score(blk_lbound *b, cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *x, int stride,
                            cg_err *e) {
  double lo;
  int exact;
  if (blk_bound_layout(b, &x->l, stride, PARTIAL_COST, INFINITY, &lo, &exact, e) ||
      (!exact && blk_bound_exact(b, PARTIAL_COST, INFINITY, &lo, &exact)) || !exact ||
      score(p, s, mask, x, stride, NULL, e))
    return -1;
  return lo != x->lo;
}

/* The bound with its shortcuts against plain evaluation: every row and
** then settled, and stopped halfway. */
static int shortcuts_are_plain(blk_lbound *b, cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *x, int stride,
                               cg_err *e) {
  (void)p, (void)s, (void)mask;
  double lo[2][3];
  int ex[2][3];
  for (int plain = 0; plain < 2; plain++) {
    blk_lbound_plain(b, plain);
    if (blk_bound_layout(b, &x->l, stride, PARTIAL_COST, INFINITY, &lo[plain][0], &ex[plain][0], e) ||
        blk_bound_exact(b, PARTIAL_COST, INFINITY, &lo[plain][1], &ex[plain][1]) ||
        blk_bound_layout(b, &x->l, stride, PARTIAL_COST, lo[0][0] / 2, &lo[plain][2], &ex[plain][2], e))
      return -1;
  }
  int bad = 0;
  for (int k = 0; k < 3; k++) bad += lo[0][k] != lo[1][k] || ex[0][k] != ex[1][k];
  return bad;
}

/* A score from a build at p's blocks, merged m to a row, against a build
** at those rows; and the stop at that score, which must not be taken, and
** just under it, which must (the build counts its rows merged). */
static int merged_is_build(blk_lbound *b, cg_pattern *p, const sieve_shape *s, cg_ref mask, cand *x, int m,
                           cg_err *e) {
  (void)b;
  int64_t f[4], q[4];
  int stopped[4], bq = p->block_q;
  if (blk_score_layout(p, s, mask, &x->l, 1, m, 0, NULL, &f[0], &q[0], &stopped[0], e)) return -1;
  p->block_q = cg_pattern_block_q(p) * m;
  sieve_status st = blk_score_layout(p, s, mask, &x->l, 1, 1, 0, NULL, &f[1], &q[1], &stopped[1], e);
  p->block_q = bq;
  int64_t cost4 = 4 * f[1] + BLK_PARTIAL_COST4 * q[1];
  if (st || blk_score_layout(p, s, mask, &x->l, 1, m, cost4, NULL, &f[2], &q[2], &stopped[2], e)) return -1;
  stopped[3] = 1;
  if (cost4 > 1 && blk_score_layout(p, s, mask, &x->l, 1, m, cost4 - 1, NULL, &f[3], &q[3], &stopped[3], e)) return -1;
  return f[0] != f[1] || q[0] != q[1] || stopped[2] || f[2] != f[1] || q[2] != q[1] || !stopped[3];
}

int cg_layouts_check_merged(cg_pattern *p, const sieve_shape *shape, int c, int m) {
  return check_candidates(p, shape, c, m, merged_is_build);
}

int cg_layouts_check_scores(cg_pattern *p, const sieve_shape *shape, int c, int stride) {
  return check_candidates(p, shape, c, stride, settled_is_score);
}

int cg_layouts_check_bounds(cg_pattern *p, const sieve_shape *shape, int c, int stride) {
  return check_candidates(p, shape, c, stride, shortcuts_are_plain);
}

int cg_layouts_check_records(cg_pattern *p, const sieve_shape *shape, int c, int stride, int *anew) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  int h;
  cg_ref mask = class_mask(p, &s, c, &h);
  blk_lbound *b = mask == CG_NONE ? NULL : blk_lbound_new(p, &s, mask);
  if (!b) return -1;
  cand cs[2 + 24];
  cg_layout ls[2 + 24];
  int n = candidates(p, &s, cs);
  for (int i = 0; i < n; i++) ls[i] = cs[i].l;
  int bad = blk_bound_check_record(b, ls, n, stride, GUESS_STRIDE, PARTIAL_COST, anew);
  blk_lbound_free(b);
  return bad;
}

int cg_layouts_check_ranking(cg_pattern *p, const sieve_shape *shape, int c, int stride, int *open, int *moved) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  int h, best[2], again;
  cg_ref mask = class_mask(p, &s, c, &h);
  cand cs[2][2 + 24];
  int n = candidates(p, &s, cs[0]);
  memcpy(cs[1], cs[0], sizeof cs[0]);
  cg_err e = {0};
  if (mask == CG_NONE || rank(p, &s, mask, cs[0], n, stride, 0, &best[0], moved, &e) ||
      rank(p, &s, mask, cs[1], n, stride, 1, &best[1], &again, &e))
    return -1;
  *open = 0;
  for (int i = 0; i < n; i++) *open += cs[0][i].open;
  /* the choice the same, identity's score and the choice's the same, and
  ** every other value either the score settling it whole gives or under
  ** it (a bound); those never scored stopped at the same best either way */
  int bad = best[0] != best[1] || cs[0][0].lo != cs[1][0].lo || cs[0][0].hi != cs[0][0].lo;
  for (int i = 0; i < n && !bad; i++) {
    const cand *a = &cs[0][i], *b = &cs[1][i];
    bad = a->lo == a->hi ? a->lo != b->lo || b->hi != b->lo : b->lo == b->hi ? a->lo > b->lo : a->lo != b->lo;
  }
  return bad;
}

const char *cg_layouts_ranking(const cg_pattern *p, const sieve_shape *shape, int c) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  const struct cg_auto *a = entry(p, &s);
  return a ? a->rank[c] : NULL;
}

int cg_layouts_chosen(const cg_pattern *p, const sieve_shape *shape, cg_layout *out) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  const struct cg_auto *a = any_auto(p) ? entry(p, &s) : NULL;
  if (any_auto(p) && !a) return -1;
  for (int c = 0; c < p->nclasses; c++) out[c] = a ? a->chosen[c] : p->classes[c].layout;
  return 0;
}

sieve_status cg_layouts_adopt(cg_pattern *p, const sieve_shape *shape, const cg_layout *in, cg_err *e) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  char name[64];
  const struct cg_auto *had = any_auto(p) ? entry(p, &s) : NULL;
  for (int c = 0; c < p->nclasses; c++) {
    cg_layout_text(&in[c], name, sizeof name);
    const cg_layout *want = had ? &had->chosen[c] : !is_auto(p, c) ? &p->classes[c].layout : NULL;
    if (want && !blk_same_layout(want, &in[c]))
      return cg_fail(e, SIEVE_ERR_CACHE, "class %d (%s): layout %s, where the pattern has its own", c,
                     p->classes[c].name, name);
    if (want) continue;
    cand cs[2 + 24];
    int n = candidates(p, &s, cs), found = 0;
    for (int i = 0; i < n; i++) found |= blk_same_layout(&cs[i].l, &in[c]);
    if (!found)
      return cg_fail(e, SIEVE_ERR_CACHE, "class %d (%s): layout %s is none of sieve.layout.auto's candidates", c,
                     p->classes[c].name, name);
  }
  if (had || !any_auto(p)) {
    if (had) apply(p, had);
    return SIEVE_OK;
  }
  struct cg_auto *a = new_entry(p, &s);
  if (!a) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  memcpy(a->chosen, in, sizeof(cg_layout) * (size_t)p->nclasses);
  a->next = p->autos;
  p->autos = a;
  apply(p, a);
  return SIEVE_OK;
}

int cg_layouts_copy(const cg_pattern *p, cg_pattern *c) {
  size_t n = (size_t)(p->nclasses ? p->nclasses : 1);
  if (p->auto_layout) {
    if (!(c->auto_layout = cg_alloc(c->arena, n))) return -1;
    memcpy(c->auto_layout, p->auto_layout, (size_t)p->nclasses);
  }
  struct cg_auto **tail = &c->autos;
  for (const struct cg_auto *a = p->autos; a; a = a->next) {
    struct cg_auto *b = cg_alloc(c->arena, sizeof *b);
    if (!b) return -1;
    *b = *a;
    b->next = NULL;
    b->check = NULL; /* kept entries are checked */
    b->rank_id = NULL;
    b->chosen = cg_alloc(c->arena, sizeof(cg_layout) * n);
    b->rank = cg_alloc(c->arena, sizeof(char *) * n);
    if (!b->chosen || !b->rank) return -1;
    memcpy(b->chosen, a->chosen, sizeof(cg_layout) * (size_t)p->nclasses);
    for (int i = 0; i < p->nclasses; i++)
      if ((b->rank[i] = a->rank[i] ? cg_strdup(c->arena, a->rank[i]) : NULL) == NULL && a->rank[i]) return -1;
    *tail = b;
    tail = &b->next;
  }
  return 0;
}
