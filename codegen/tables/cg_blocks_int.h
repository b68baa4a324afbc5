/*
** Private to the block-table builder, cg_blocks*.c (cg_blocks.c says which
** file does what): the state one table's build passes between its stages.
** The blk_ names stay inside libsieve, since api/exports.map lets only cg_*
** out.
*/
#ifndef CG_BLOCKS_INT_H
#define CG_BLOCKS_INT_H

#include <stdatomic.h>

#include "cg_blocks.h"
#include "cg_interval.h"

#define MICRO 8  /* tokens per micro-block, the unit of a block pair's second look */
#define PAIR_LANES 1024  /* (query tuple, key tuple) pairs per evaluation, at least */
#define MICRO_PAIRS 1024  /* token pairs past which a block pair is refined by micro-blocks */

#define SPEC_CACHE 32
#define SUPER 16     /* blocks per super-block, the unit of the interval test's first look */
#define SAMPLES 3    /* query tokens a row's witness pass tries (cg_blocks_witness.c) */

/* One distinct layout: the token at each position, and the boxes of the
** blocks and of the micro-blocks. */
typedef struct lay {
  cg_layout l;
  cg_coords c;
  cg_box *qbox, *kbox, *mbox;
  int nm;
} lay;

/*
** Runs of tokens with equal interfaces inside each block: a block pair is
** evaluated once per (query run, key run), weighted by the runs' lengths.
*/
typedef struct runs {
  int64_t *off;  /* [nb + 1]: the first run of each block */
  int64_t *v;    /* [nv][n]: each run's interface values */
  int64_t *w;    /* [n]: each run's length */
  int64_t n;     /* runs in all */
} runs;

typedef struct job job;

/* Where a row's lists were written. */
typedef struct rowres {
  int w;
  int64_t foff, poff;
  int nf, np;
} rowres;

typedef struct spec_entry {
  uint64_t dec, val;
  cg_spec *sp;
} spec_entry;

/* Interface tuples with their token counts: value j of tuple i is v[j * ld + i]. */
typedef struct tuples {
  int64_t *v, *w, ld, n;
} tuples;

/* A hash set of tuple indices, emptied by bumping the stamp. */
typedef struct dedup {
  int32_t *slot;
  uint32_t *gen, stamp, mask;
} dedup;

typedef struct worker {
  job *j;
  cg_scratch *s;
  cg_iscratch *is;
  int32_t *full, *part;
  int64_t nfull, npart, capf, capp;
  uint8_t *cls;          /* interval class per distinct key block (kmap) of the current row */
  cg_ival *qrow, *prev;  /* this row's query interfaces; those cls was made for */
  int have_prev;
  uint64_t *dec, *val;   /* per distinct key block: QK instructions the intervals decide */
  spec_entry spec[SPEC_CACHE];
  int nspec;
  int64_t *ql, *kl, *out; /* lanes: [nqv][lanes], [nkv][lanes], [lanes] */
  int64_t lanes;
  dedup h;
  /* Distinct tuples of the current query block, for (tq_qb, tq_live); of
  ** each key block, laid out like j->kr, for tk_live[kb] when tk_ok[kb]. */
  tuples tq, tk;
  int tq_qb;
  uint64_t tq_live;
  int64_t *tk_n;
  uint64_t *tk_live;
  uint8_t *tk_ok;
  uint8_t *scls;         /* interval class per key super-block, of super row srow */
  int srow, cls_srow;    /* the super row scls holds; the one cls was made under */
  uint8_t *rc;           /* this row's class per key block; undecided ones... */
  int32_t *und;          /* ...listed here, */
  int64_t *rn;           /* ...with their allowed pairs: -1 unknown, -2 partial by witnesses */
  int64_t *west;         /* per undecided block: the witness pass's estimate of rn */
  int64_t *wout;         /* one query token against a range of keys: [S] */
  int64_t *wsum;         /* per undecided block: trues over the samples */
  uint8_t *wseen;        /* per undecided block: bit 0 a true seen, bit 1 a false */
  uint8_t *mcls;         /* interval class per key micro-block */
  int64_t *tokq, *tokk;  /* a micro-block's interfaces: [nqv][MICRO], [nkv][MICRO] */
  int64_t st[8];         /* interval full/empty/undecided, refined full/empty/partial, allowed,
                         ** partial blocks whose allowed pairs are estimated */
  int fail;
} worker;

struct job {
  const cg_prog *prog;
  const lay *L;
  int64_t S;
  int bq, bk, nq, nk, nqv, nkv;
  runs qr, kr;
  cg_ival *qiv, *kiv;    /* interfaces per block: [nqv][nq], [nkv][nkr] */
  int nkr;               /* key blocks with distinct interfaces in a row... */
  int32_t *kmap;         /* ...and which of them each key block is */
  int micro;             /* blocks split into micro-blocks (sizes are multiples of MICRO) */
  int nsq, nsk;          /* super-blocks, and their interfaces: [nqv][nsq], [nkv][nsk] */
  cg_ival *sqiv, *skiv;
  int exact;             /* count every partial block's allowed pairs */
  int stride;            /* only rows that are multiples of it are built (scoring) */
  int sample;            /* some block pair may be sampled (cg_blocks_witness.c) */
  int64_t *qtok, *ktok;  /* without exact: every token's interfaces, [nqv][S], [nkv][S] */
  cg_ival *qmiv, *kmiv;  /* interfaces per micro-block: [nqv][nm], [nkv][nm] */
  atomic_int next;
  rowres *rows;
  worker *w;
  int nw;
};

enum { ST_IFULL, ST_IEMPTY, ST_IUND, ST_RFULL, ST_REMPTY, ST_RPART, ST_ALLOWED, ST_EST, ST_N };

/* cg_blocks_layout.c */
int blk_same_layout(const cg_layout *a, const cg_layout *b);
int blk_lay_init(lay *L, const cg_layout *l, const sieve_shape *s, const cg_tableset *t);
void blk_lay_free(lay *L);

/* cg_blocks_runs.c */
int blk_runs_build(runs *r, const cg_prog *p, int key_side, const cg_coords *c, int64_t bsz, int nb,
                   cg_scratch *s);
void blk_runs_free(runs *r);

/* cg_blocks_job.c */
int blk_job_prepare(job *j);
int blk_worker_init(worker *w, job *j);
void blk_job_free(job *j);

/* cg_blocks_rows.c */
int blk_job_run(job *j);

/* cg_blocks_refine.c */
int64_t blk_refine(worker *w, int qb, int kb, int64_t q0, int64_t q1, int64_t k0, int64_t k1);

/* cg_blocks_witness.c */
void blk_witness(worker *w, int qb, int n);

/* cg_blocks_table.c */
sieve_status blk_build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e);

/* cg_blocks_bits.c: t's bitmasks, once its lists are built. */
sieve_status blk_build_bits(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e);

/* cg_blocks.c: full and partial blocks of `mask` under layout l, over the
** query-block rows that are multiples of stride (cg_layout_auto.c). */
sieve_status blk_score_layout(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride,
                              int64_t *full, int64_t *part, cg_err *e);

/* cg_blocks_heads.c */
sieve_status blk_check_pattern(const cg_pattern *p, cg_err *e);
int blk_head_table(cg_pattern *p, cg_tableset *ts, int h);
int blk_pos_mask(cg_pattern *p, const cg_tableset *ts, cg_table *t);

#endif
