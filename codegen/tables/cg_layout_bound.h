/*
** Private to the layout bounds (cg_layout_bound.c: the state and the
** bound; cg_layout_settle.c: settling what a bound left open), which
** cg_layout_auto.c uses through cg_blocks_int.h.
*/
#ifndef CG_LAYOUT_BOUND_H
#define CG_LAYOUT_BOUND_H

#include <pthread.h>

#include "cg_blocks_int.h"

/* Keys gathered per call of witness's token pass, at most. */
#define GATHER(b) ((int64_t)(b)->ts.nk * MICRO)

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/*
** What the candidates of one choice share: the mask's program (the same
** for every layout: only the coordinates differ) and buffers sized for
** the shape, made once, since fresh ones for each of some forty bounds
** cost more in page faults than the bounds' own work.
*/
struct blk_lbound {
  cg_tableset ts;  /* the shape and blocks only */
  cg_coords c;     /* the layout bounded */
  cg_box *qbox, *kbox; /* its blocks' boxes (one array when the blocks are the same) */
  cg_prog *prog;
  cg_iscratch *is;
  cg_scratch *sc;
  cg_ival *qrow, *kiv, *qpt; /* a query block's and a token's interface intervals, key blocks' */
  /* key super-blocks of SUPER blocks (shared like kiv), which a bound's
  ** row classifies first: their boxes (a worker's, as it loads a layout),
  ** intervals and classes */
  cg_box *skbox;
  cg_ival *skiv;
  uint8_t *skcls;
  int nks;
  int64_t *ktok, *kblk, *qtok, *out, *g;
  uint8_t *cls, *seen, *kdone;
  int32_t *und, *left, *sel;
  /* the last bound: its counts, whether it ran every row, and the pairs
  ** its witnesses left unsettled, for blk_bound_exact */
  int64_t full, part, visited;
  int all_rows;
  struct pend {
    int32_t qb, kb;
    uint8_t seen;
  } *pend;
  int64_t npend, cappend;
  /*
  ** A bound's rows, and settling's, run on threads (blk_lb_rows), a
  ** worker each with its own buffers (w[0] is this one; the others share
  ** its read-only state, owner set), one row at a time. A row's counts go
  ** to rows[] (a bound's open pairs to its worker's wp); the caller adds
  ** them up in row order and stops at the first row past `stop`, as one
  ** thread would. Workers stop taking rows once the rows done in order
  ** pass it: at most a row each is wasted.
  */
  struct blk_lbound **w, *owner;
  int nw, idx; /* idx: this one's in w */
  struct lrow {
    int64_t full, part, visited, off;
    int nund, w;
  } *rows;
  struct pend *wp;
  int64_t nwp, capwp, tried, shown; /* tried, shown: blk_bound_layout's first look */
  int (*row)(struct blk_lbound *w, int k, struct lrow *r);
  pthread_mutex_t mu;
  uint8_t *done;
  int nrows, next, pre, stopped, fail, stride;
  int64_t pfull, ppart, pvisited, *groups; /* groups: settling's rows, as pend's first of each and its end */
  /* settling's pass of the query blocks' end tokens over every row: per
  ** open pair whether they found it partial ([capends]); ends: the pass
  ** ran, and the settling after it takes its findings */
  uint8_t *endp;
  int64_t capends;
  int ends;
  double stop, partial_cost;
  /* sub-blocks of MICRO tokens: their boxes and interface intervals (a
  ** key block's made once per layout, on first use: many rows look at
  ** it; [nkv][nk * nsk]), lanes of sub-block pairs (their classes in
  ** lcls: sub_pairs' query and key sub-blocks in lq and lk, witness's key
  ** sub-blocks in lk, and in lq its token pass's blocks and lengths) */
  cg_box *sbox;
  cg_ival *qsiv, *ksiv;
  uint8_t *ksdone, *scls, *lcls;
  uint8_t *ccls, *fcls; /* sub_pairs': query sub-blocks against whole key blocks, then the sub-block pairs left open */
  int32_t *lq, *lk;
  int nsk;
  /* blk_bound_exact's: the query block's tokens' interfaces and one token's */
  int64_t *qtb, *qv1;
  /* every token's key interfaces by its model index ([seq][nkv]: a
  ** token's in one cache line, as layouts gather them out of order), where
  ** the key phase does not read the position: a token's are then the same
  ** under every layout, and a layout's are gathered from these instead of
  ** evaluated again (some 13 ns a key) for each candidate; NULL where not.
  ** (A row's witness is one query token: its side costs little.) */
  int64_t *tokv;
  int plain; /* blk_lbound_plain */
  /* blk_bound_record's: a worker's own layout state (w[0] uses its own
  ** c, qbox, kbox and kiv), made on first use, the layouts and their
  ** records */
  cg_coords oc;
  cg_box *oqbox, *okbox;
  cg_ival *okiv, *oskiv;
  cg_layout *recl;
  struct blk_lrec *recs;
  int nrec, rstride, revery;
  double rstop; /* the least score a layout recorded whole can have at most */
};

/* A layout's bound, as blk_bound_record made it: the rows' counts, their
** open pairs (rows[k].off into pend); rows [0, made) and every
** revery-th, the rows from made on left out once the counts passed a
** score another layout cannot exceed. */
struct blk_lrec {
  struct lrow *rows;
  struct pend *pend;
  int64_t npend;
  int made;
};

/* Row k of nrows into r by worker w; -1 out of memory. */
typedef int (*blk_lb_row)(blk_lbound *w, int k, struct lrow *r);
/* Rows [0, nrows) of row on b's workers into b->rows: every row up to
** the first where the counts added in row order, from full and part,
** pass stop (partial ones weighing partial_cost), and perhaps a few
** after it; -1 out of memory. */
int blk_lb_rows(blk_lbound *b, int nrows, blk_lb_row row, double stop, double partial_cost, int64_t full,
                int64_t part);
/* The pairs a bound left open: the owner's. */
static inline const struct pend *blk_lb_pend(const blk_lbound *w) { return w->owner ? w->owner->pend : w->pend; }

/* Layout l into w's coordinates, block boxes and key blocks' intervals;
** -1 for an invalid layout. */
int blk_lb_load(blk_lbound *w, const cg_layout *l);
/* Worker w's keys made for the layout before, forgotten, with plain
** (blk_lbound_plain) its own. */
void blk_lb_fresh(blk_lbound *w, int plain);
/* Layout l, at stride, into b and every worker fresh for it: what a bound
** or its settling reads; -1 for an invalid layout. */
int blk_lb_take(blk_lbound *b, const cg_layout *l, int stride);
/* Row qb of the layout loaded, by worker w, into r; its open pairs
** appended to w->wp. -1 out of memory. */
int blk_lb_bound_row(blk_lbound *w, int qb, struct lrow *r);
/* Rows rows[0, nrows) of a bound, every `every`-th, added up in order into
** b's last bound (its counts, all_rows and, with every 1, its open pairs:
** from pend, or else from the workers' wp) to the first row past stop;
** *exact, *lo as blk_bound_layout. -1 out of memory. */
int blk_lb_sum(blk_lbound *b, const struct lrow *rows, int nrows, int every, const struct pend *pend,
               double partial_cost, double stop, double *lo, int *exact);
/* The workers' own layout state and the records, freed. */
void blk_lb_records_free(blk_lbound *b);

/* The query interfaces' intervals of token q alone. */
void blk_lb_point(blk_lbound *b, int64_t q, cg_ival *qpt);
/* Interface intervals of the sub-blocks of MICRO tokens of [p0, p1) into
** iv ([nv][ld]); n returned. */
int blk_lb_sub_ivals(blk_lbound *b, int key_side, int64_t p0, int64_t p1, cg_ival *iv, int64_t ld);
/* The sub-block intervals of key block kb, made on first use. */
void blk_lb_key_subs(blk_lbound *b, int kb);
/* Key block kb's interfaces, [nkv][*ld]. */
const int64_t *blk_lb_block_keys(blk_lbound *b, int kb, int64_t *ld);
/* What query token q (interfaces qv, their intervals qpt) sees against
** key blocks und[0..nund): seen[i] bit 0 set by a false, bit 1 by a true. */
int blk_lb_witness(blk_lbound *b, const int64_t *qv, const cg_ival *qpt, const int32_t *und, int nund,
                   uint8_t *seen, int first);

#endif
