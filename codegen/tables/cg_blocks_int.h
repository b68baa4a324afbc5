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
#define MINI 4   /* micro-blocks per mini-block, a level between block and micro-block */
#define PAIR_LANES 1024  /* (query tuple, key tuple) pairs per evaluation, at least */
#define MICRO_PAIRS 1024  /* token pairs past which a block pair is refined by micro-blocks */

#define SPEC_CACHE 32
#define SUPER 16     /* blocks per super-block, the unit of the interval test's first look */
#define GROUP 4      /* key blocks per group, its second look (divides SUPER) */
#define MAX_THREADS 16 /* a table's rows, or a layout bound's, run on as many threads at most */
/* A table's rows run on this many workers at most: each warms caches of its
** own (micro pairs, the memo's copies, rows to reuse), and on a 16-core
** host 8 built the tables in 0.92 of the time 16 took (the median of 11
** patterns, 0.87-1.02; bench/RESULTS.md, 2026-12-06). An automatic
** layout's check beside the build takes other cores. */
#define ROW_THREADS 8
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
  size_t vcap, wcap; /* bytes of v and w */
} runs;

typedef struct job job;

/* cg_blocks_par.c: threads for n units of work (SIEVE_THREADS, else the
** cores; at most MAX_THREADS and n, at least one). */
int blk_threads(int64_t n);
/* The calling thread's work takes at most n threads from now on (0: as
** many as blk_threads gives), in blk_threads: a build beside another
** leaves it the cores it needs. The bound before is returned. */
int blk_threads_cap(int n);
/* fn on n args (args, each stride bytes after the one before; stride 0:
** all share args, a region's state, handed out by a counter): the first
** on the calling thread, the others on helper threads (cg_blocks_helpers.c:
** kept parked between calls); back when all are done. One that fails to start is skipped: callers hand work out
** through a shared counter, so the others take its share. */
void blk_on_threads(int n, void *(*fn)(void *), void *args, size_t stride);
/* Work on threads: fn over items [0, n), in ranges [a, b) of at least
** grain items (the last may be shorter), each once. */
typedef struct blk_task {
  int (*fn)(void *ctx, int64_t a, int64_t b);
  void *ctx;
  int64_t n, grain;
} blk_task;
#define BLK_TASKS 8 /* tasks blk_par_tasks takes at most */
/* nt tasks on one set of threads; -1 where fn returned non-zero. */
int blk_par_tasks(const blk_task *t, int nt);
/* Items of a side's program worth a thread of their own. */
int64_t blk_grain(const cg_prog *p, int key_side);
/* cg_ival_side as a task, its arguments kept in x. */
typedef struct blk_side {
  const cg_prog *p;
  int key_side;
  const cg_box *boxes;
  cg_ival *out;
  int64_t ld;
} blk_side;
blk_task blk_ival_task(blk_side *x, const cg_prog *p, int key_side, const cg_box *boxes, int64_t n, cg_ival *out,
                       int64_t ld);

/* Buffers kept from one table of a tableset to the next (cg_blocks_pool.c),
** a slot per kind of buffer. */
enum { POOL_QV, POOL_QW, POOL_KV, POOL_KW, POOL_QTOK, POOL_KTOK, POOL_QMIV, POOL_KMIV, POOL_MQH, POOL_MKH,
       POOL_N };
typedef struct blk_pool {
  struct {
    void *p;
    size_t cap;
  } s[POOL_N];
} blk_pool;

/* Where a row's lists were written. */
typedef struct rowres {
  int w;
  int64_t foff, poff;
  int nf, np;
} rowres;

/* Translation pairs of a specialised program (cg_blocks_memo.c): q[i] is
** the key interface query interface i is read against only, or -1; k
** likewise. */
typedef struct blk_shift {
  int8_t q[64], k[64];
} blk_shift;

/* The query side's part of a memo key (cg_blocks_memo.c's pair_key) for
** query block qb under one specialisation, with the key side's shift d;
** hl and dg: the same for key blocks of lk tokens, the length mixed in. */
typedef struct blk_qkey {
  int qb, lk;
  uint64_t h[2], d[2], hl[2], dg[2];
} blk_qkey;

typedef struct spec_entry {
  uint64_t dec, val;
  cg_spec *sp;
  blk_shift sh;
  blk_qkey qk;  /* kept per specialisation: a row's key blocks alternate between a few */
  uint64_t *ks; /* per key block, the weighted sum of its live interfaces' hashes: [nk][2]
                ** (cg_blocks_memo.c), made at its first key; NULL before */
} spec_entry;

/* Distinct bitmasks of wpb words, each kept once (cg_blocks_bitset.c). */
typedef struct blk_bitset {
  int wpb;
  uint32_t *w;
  uint64_t *h; /* each one's hash */
  int64_t n, cap;
  int64_t *slot;
  uint64_t mask;
} blk_bitset;

/* w's number in the set, w added where it is new (-1 out of memory);
** blk_intern_hashed with w's blk_bits_hash, made before a lock is taken. */
int64_t blk_intern(blk_bitset *b, const uint32_t *w);
uint64_t blk_bits_hash(const blk_bitset *b, const uint32_t *w);
int64_t blk_intern_hashed(blk_bitset *b, const uint32_t *w, uint64_t h);
/* The set's words, n * wpb of them, as arena a's (NULL out of memory):
** the set's own where the arena can take them, else a copy. */
uint32_t *blk_bitset_adopt(blk_bitset *b, cg_arena *a);
void blk_bitset_free(blk_bitset *b);

typedef struct blk_memo blk_memo;
typedef struct blk_lmemo blk_lmemo;
typedef struct blk_reuse blk_reuse;
typedef struct blk_rw blk_rw;

/* A built row as a later row may copy it (cg_blocks_reuse.c): every key
** block the intervals did not call empty, in order, with what it became.
** tag: where rows copy results, a partial block's bitmask (its number in
** the memo's set; bn of a worker that met it holds its allowed pairs),
** else RE_*;
** where rows copy classes only (job's reuse_cls), an undecided block's
** signature (blk_reuse_sig), else RE_IFULL. Eight bytes: a dense row's
** copy reads its reference's entries and writes its own. */
enum { RE_IFULL = -1, RE_RFULL = -2, RE_REMPTY = -3 };
typedef struct blk_rent {
  int32_t kb, tag;
} blk_rent;

typedef struct blk_rrow {
  int owner; /* the worker that built it */
  blk_rent *e;
  int64_t n, cap, most; /* most: entries past which the row is not kept (-1: it is not) */
} blk_rrow;

/* The row a row copies: a query block the same tokens back as d key
** blocks (d bk / bq query blocks), whose key block kb - d stands for kb
** wherever need[kb] is 0; where need[kb] is 2, src's (the row
** before) own key block kb does (cg_blocks_reuse.c says when); the others
** (need 1, runs [a, b) in runs[2i], runs[2i + 1]) are classified afresh. */
typedef struct blk_ref {
  int d;
  const blk_rrow *row, *src;
  const uint8_t *need, *gneed; /* per key block, per key group */
  const int32_t *runs;
  int nruns;
} blk_ref;
typedef struct blk_mcache blk_mcache;
typedef struct blk_cset blk_cset;

/* The memo's hashes of the micro-blocks' sequences, for the micro-pair
** cache (cg_blocks_micro.c), and of the mini-blocks' where the job has
** them (else NULL). */
typedef struct blk_mhash {
  const uint64_t *qh;  /* per query interface and micro-block: [nqv][nm][2] */
  const uint64_t *kh;  /* per micro-block and key interface, weighted: [nm][nkv][2] */
  const uint64_t *nqh; /* likewise per mini-block: [nqv][nn][2] */
  const uint64_t *nkh; /* [nn][nkv][2] */
  const uint64_t *kw;  /* [nkv][2]: each key interface's weight */
  const uint64_t *g;   /* [len][2]: the sum of the first len powers */
} blk_mhash;

/* Interface tuples with their token counts: value j of tuple i is v[j * ld + i]. */
typedef struct tuples {
  int64_t *v, *w, ld, n;
} tuples;

/* A hash set of tuple indices, emptied by bumping the stamp. */
typedef struct dedup {
  int32_t *slot;
  uint32_t *gen, stamp, mask;
} dedup;

/* Workers start on lines of their own: each writes its counts per block. */
typedef struct worker {
  _Alignas(64) job *j;
  cg_scratch *s;
  cg_iscratch *is;
  int32_t *full, *part, *partm; /* partm: each partial block's bitmask, its first word in the memo's set */
  int64_t nfull, npart, capf, capp, capm;
  int64_t nomask;        /* partial blocks without a bitmask (partm -1) */
  int32_t *rid;          /* per undecided block of the row: its bitmask in the memo's set, or -1 */
  int32_t *mcnt;         /* with merge: per key block, the merged row's full count, then its stamp ([2 nk]) */
  int64_t *bn;           /* per bitmask: its allowed pairs, -1 where this worker has not met it ([nbn]) */
  int32_t nbn;
  uint32_t *mbits;       /* a block pair's bits, as the memo evaluates it */
  blk_lmemo *lm;         /* the memo entries this worker has looked up (cg_blocks_memo.c) */
  blk_mcache *mc;        /* the micro and mini pairs this worker missed, pending (cg_blocks_micro.c) */
  int64_t mlook, mmiss;  /* memo lookups and misses not yet added to the memo's */
  uint8_t *cls;          /* interval class per distinct key block (kmap) of the current row */
  cg_ival *qrow, *prev;  /* this row's query interfaces; those cls was made for */
  int have_prev;
  uint64_t *dec, *val;   /* per distinct key block: QK instructions the intervals decide */
  spec_entry spec[SPEC_CACHE];
  int nspec, spec_last;  /* spec_last: the entry blk_spec last returned */
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
  int32_t *upre;         /* per key super-block: undecided ones before it in scls ([nsk + 1]) */
  uint8_t *sgcls;        /* interval class per key group, of super row srow (where its super-block is undecided) */
  uint8_t *gcls;         /* interval class per key group, of the row cls was made for (where
                         ** its super-block is undecided); cls holds only undecided groups' */
  int srow, cls_srow;    /* the super row scls holds; the one cls was made under */
  uint8_t *rc;           /* this row's class per key block; undecided ones... */
  int32_t *und;          /* ...listed here, */
  int32_t *ek;           /* a copied row's key blocks not interval-empty, in order */
  int64_t *rn;           /* ...with their allowed pairs: -1 unknown, -2 partial by witnesses */
  int64_t *west;         /* per undecided block: the witness pass's estimate of rn */
  int64_t *wout;         /* one query token against a range of keys: [S] */
  int64_t *wsum;         /* per undecided block: trues over the samples */
  uint8_t *wseen;        /* per undecided block: bit 0 a true seen, bit 1 a false */
  uint8_t *mcls;         /* interval class per key micro-block */
  uint8_t *mgrid;        /* a block pair's micro pairs' classes, row-major (cg_blocks_micro.c) */
  /* Lanes of one batched interval call (cg_ival_pairs_sig): query and key
  ** indices, classes, signatures; nlane of them. */
  int32_t *lq, *lk;
  uint8_t *lcls;
  uint64_t *ldec, *lval;
  int64_t nlane;
  int64_t *tokq, *tokk;  /* a micro-block's interfaces: [nqv][MICRO], [nkv][MICRO] */
  blk_rw *rw;            /* rows kept for reuse (cg_blocks_reuse.c) */
  int rows;              /* rows this worker has begun */
  int64_t st[10];        /* interval full/empty/undecided, refined full/empty/partial, allowed,
                         ** partial blocks whose allowed pairs are estimated, moved rows, key blocks
                         ** copied unmoved */
  int fail;
} worker;

struct job {
  blk_pool *pool;        /* NULL: nothing is kept for the next table */
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
  int ngk;               /* key groups of GROUP blocks, and their interfaces: [nkv][ngk] */
  cg_ival *gkiv;
  int exact;             /* count every partial block's allowed pairs */
  int stride;            /* only rows that are multiples of it are built (scoring) */
  int sample;            /* some block pair may be sampled (cg_blocks_witness.c) */
  int64_t *qtok, *ktok;  /* without exact: every token's interfaces, [nqv][S], [nkv][S] */
  cg_ival *qmiv, *kmiv;  /* interfaces per micro-block: [nqv][nm], [nkv][nm] */
  size_t qtok_cap, ktok_cap, qmiv_cap, kmiv_cap; /* their bytes, for the pool */
  int nn;                /* mini-blocks, where blocks are whole ones (else 0), and their */
  cg_ival *qniv, *kniv;  /* interfaces: [nqv][nn], [nkv][nn] */
  blk_memo *memo;        /* NULL: every undecided pair by witnesses and refinement */
  blk_reuse *ru;         /* NULL: no row copies another (cg_blocks_reuse.c) */
  int reuse_cls;         /* rows copy interval classes only, and settle as built afresh */
  int bits;              /* the table carries bitmasks */
  int no_memo;           /* CG_TABLES_NO_MEMO */
  int no_reuse;          /* CG_TABLES_NO_REUSE */
  atomic_int next;
  int64_t stop4;         /* cg_tableset's */
  const atomic_llong *stop_live; /* or NULL: the stop, which the caller may lower while the job runs */
  int merge;             /* above 1: cg_tableset's stop_merge */
  atomic_llong cost4;    /* 4 a full + BLK_PARTIAL_COST4 a partial block over the rows done, with stop4 */
  atomic_int stopped;
  rowres *rows;
  worker *w;
  int nw;
  blk_cset *_Atomic mset, *_Atomic nset; /* micro and mini pairs evaluated, the workers' (cg_blocks_micro.c) */
};

enum { ST_IFULL, ST_IEMPTY, ST_IUND, ST_RFULL, ST_REMPTY, ST_RPART, ST_ALLOWED, ST_EST, ST_MOVED, ST_UNMOVED, ST_N };

/* cg_blocks_score.c: a row's full key blocks f[0, nf) and partial ones p[0,
** np) into the merged row stamped `stamp`, with cnt and seen scratch over
** the key blocks (seen never stamp before its first row): *vis counts
** the key blocks the merged row visits. blk_merge_full: of those, the
** full ones of the m rows, from its first row's full key blocks. */
void blk_merge_row(const int32_t *f, int64_t nf, const int32_t *p, int64_t np, int32_t stamp, int32_t *cnt,
                   int32_t *seen, int64_t *vis);
int64_t blk_merge_full(const int32_t *f, int64_t nf, int m, const int32_t *cnt);

/* cg_blocks_layout.c */
int blk_same_layout(const cg_layout *a, const cg_layout *b);
int blk_lay_init(lay *L, const cg_layout *l, const sieve_shape *s, const cg_tableset *t);
/* The boxes of nb blocks of bsz positions of c, from their tokens. */
void blk_box_blocks(const cg_coords *c, int64_t bsz, int nb, cg_box *out);
/* nb blocks of per boxes of m[0, nm) each (the last ragged): their hulls. */
void blk_box_hull(const cg_box *m, int nm, int per, int nb, cg_box *out);
void blk_lay_free(lay *L);

/* cg_blocks_runs.c: a side's runs, found by the task blk_runs_begin
** makes (its state in x; -1 out of memory), closed up by blk_runs_end
** once the task ran (ok). */
typedef struct blk_scan {
  runs *r;
  const cg_prog *p;
  int key_side, nv;
  const cg_coords *c;
  int64_t bsz;
  int nb;
  int64_t *cnt; /* per block, its runs */
} blk_scan;
int blk_runs_begin(blk_scan *x, runs *r, blk_pool *pl, const cg_prog *p, int key_side, const cg_coords *c,
                   int64_t bsz, int nb, blk_task *t);
void blk_runs_end(blk_scan *x, int ok);
void blk_runs_free(runs *r, blk_pool *pl, int key_side);
void blk_runs_expand(const runs *r, int nv, int64_t S, int64_t *tok);

/* cg_blocks_pool.c: a buffer of at least n bytes (not zeroed) and its
** capacity; given back, it may serve the next table. A NULL pool is plain
** malloc and free. */
void *blk_take(blk_pool *pl, int slot, size_t n, size_t *cap);
void blk_give(blk_pool *pl, int slot, void *p, size_t cap);
void blk_pool_free(blk_pool *pl);
/* A large buffer of n bytes, in huge pages where the system gives them
** (freed with free); blk_big_grow: p, of which `used` bytes are kept, as
** one of n bytes (NULL out of memory, p then unchanged). */
void *blk_big(size_t n);
void *blk_big_grow(void *p, size_t used, size_t n);

/* cg_blocks_job.c */
int blk_job_prepare(job *j);
int blk_worker_init(worker *w, job *j);
void blk_job_free(job *j);

/* cg_blocks_rows.c */
int blk_job_run(job *j);

/* cg_blocks_refine.c */
spec_entry *blk_spec(worker *w, uint64_t dec, uint64_t val);
int64_t blk_refine(worker *w, int qb, int kb, int64_t q0, int64_t q1, int64_t k0, int64_t k1);

/* cg_blocks_witness.c */
void blk_witness(worker *w, int qb, int n);

/* cg_blocks_memo.c: 0 (j->memo NULL where the memo cannot apply) or -1
** out of memory. blk_memo_pair: the pair's exact allowed pairs and its
** entry (-1 and w->fail on failure). */
void blk_shift_of(const cg_spec *sp, blk_shift *sh);
int blk_memo_new(job *j, int bits);
void blk_memo_free(blk_memo *m);
void blk_lmemo_free(blk_lmemo *l);
int blk_memo_on(const blk_memo *m);
int blk_memo_bits(const blk_memo *m);
int64_t blk_memo_bits_count(blk_memo *m, int32_t b); /* bitmask b's allowed pairs */
blk_bitset *blk_memo_set(blk_memo *m);
/* The pair's bitmask, its number in the set, goes into *id: -1 where the
** memo keeps no bits, or the pair is empty or full. */
int64_t blk_memo_pair(worker *w, int qb, int kb, spec_entry *se, int32_t *id);

void blk_memo_seq(const blk_memo *m, int key_side, int v, int b, int64_t a, uint64_t h[2]);

/* cg_blocks_reuse.c: j->ru where rows may be reused (0), -1 out of
** memory. blk_reuse_ref: the row qb may copy, or NULL. A row's entries go
** into blk_reuse_begin's record through blk_rec, kept by blk_reuse_end. */
int blk_reuse_new(job *j);
void blk_reuse_free(blk_reuse *ru);
const blk_ref *blk_reuse_ref(worker *w, int qb);
blk_rrow *blk_reuse_begin(worker *w, int qb);
void blk_reuse_end(worker *w, blk_rrow *r, int qb);
blk_rent *blk_rrow_add(worker *w, blk_rrow *r, int64_t m);
void blk_rw_free(blk_rw *rw);
int32_t blk_reuse_sig(worker *w, uint64_t dec, uint64_t val);
/* Super row sr's key super-blocks whose undecided program reads only
** query interfaces constant over the super row, kept for blk_reuse_ref;
** w->qrow and w->scls hold the super row's interfaces and classes. */
void blk_reuse_super(worker *w, int sr);
void blk_reuse_sig_at(const worker *w, int32_t id, uint64_t *dec, uint64_t *val);

static inline void blk_rec(worker *w, blk_rrow *r, int kb, int32_t tag) {
  blk_rent *e = r->n < r->cap ? &r->e[r->n++] : blk_rrow_add(w, r, 1);
  if (e) *e = (blk_rent){kb, tag};
}

/* cg_blocks_micro.c: the allowed pairs of block pair [q0, q1) x [k0, k1)
** (whole micro-blocks) and, with wpb, its bits into w->mbits; w->fail on
** failure. */
int64_t blk_micro_eval(worker *w, const spec_entry *se, const blk_mhash *mh, int64_t q0, int64_t q1, int64_t k0,
                       int64_t k1, int wpb);
void blk_mcache_free(blk_mcache *c);

/* cg_blocks_cset.c: a set of entries of esz bytes, keyed by their first
** two words (the first odd: 0 marks an empty slot), shared by threads
** without a lock; at most max are kept, later ones dropped. find: the
** entry, or NULL. */
blk_cset *blk_cset_new(int64_t max, size_t esz);
void blk_cset_free(blk_cset *s);
const void *blk_cset_find(const blk_cset *s, uint64_t h0, uint64_t h1);
void blk_cset_add(blk_cset *s, const void *entry);

/* Query micro-block mq's interfaces into w->qrow, then the interval class
** of key micro-blocks m0 .. m1-1 against them into w->mcls (refinement and
** the memo both walk a block pair this way). */
static inline void blk_micro_row(worker *w, int64_t mq, int64_t m0, int64_t m1) {
  const job *j = w->j;
  int nm = j->L->nm;
  for (int v = 0; v < j->nqv; v++) w->qrow[v] = j->qmiv[(int64_t)v * nm + mq];
  cg_ival_row(j->prog, w->qrow, j->kmiv + m0, nm, (int)(m1 - m0), w->mcls, w->is);
}

/* cg_blocks_table.c */
/* bits: the table carries bitmasks; they are built here (t->bits set)
** when the memo settled every partial block, else by blk_build_bits. */
sieve_status blk_build_table(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, int bits, cg_err *e);
/* The same with t->mask compiled (blk_table_prog, NULL out of memory);
** with stop, the job stops past *stop, read as it runs, not ts->stop4. */
sieve_status blk_build_prog(cg_tableset *ts, cg_table *t, const lay *L, const cg_prog *prog, int bits,
                            const atomic_llong *stop, cg_err *e);
cg_prog *blk_table_prog(const cg_graph *g, cg_ref mask);

/* cg_blocks.c: an empty tableset for shape at p's blocks, step and layer. */
sieve_status blk_tableset_new(const cg_pattern *p, const sieve_shape *shape, int step, int layer, cg_tableset **out,
                              cg_err *e);

/* cg_blocks_bits.c: t's bitmasks, once its lists are built: by their own
** pass, or from the memo's set (pm: each partial block's first word in
** it, an array of ts's arena that becomes t->part_bits). */
sieve_status blk_build_bits(cg_tableset *ts, cg_table *t, const lay *L, cg_graph *g, cg_err *e);
sieve_status blk_bits_from_memo(cg_tableset *ts, cg_table *t, blk_memo *m, int32_t *pm);

/* What a partial block costs in quarters of a full one, for the layout
** chooser's scores and their stop (stop4: 4 a full block, this a partial). */
#define BLK_PARTIAL_COST4 5

/* cg_blocks_score.c: full and partial blocks of `mask` under layout l, over the
** query-block rows that are multiples of stride (cg_layout_auto.c); with
** stop4 > 0, *stopped when 4 a full block + BLK_PARTIAL_COST4 a partial passed it before the last
** row (the counts are then those of the rows built). pool: buffers to
** take and give back, or NULL. With m > 1 (stride 1), over every row at
** query blocks of m of p's (the rows a kernel merges), from a table built
** at p's: a merged pair is full where its m pairs all are, and visited
** where any is, so the counts are exact. The build at p's blocks takes
** its rows m at a time and counts them merged, so it stops (*stopped, the
** counts 0) once the merged rows pass stop4. */
sieve_status blk_score_layout(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride, int m,
                              int64_t stop4, blk_pool *pool, int64_t *full, int64_t *part, int *stopped, cg_err *e);
/* The same as a scorer started at p's blocks as they are now, finished
** for its counts. With
** thread (> 0) it builds on a thread of its own, where one starts, on at
** most that many threads (blk_threads_cap), from rows
** 0 on with no stop until blk_scorer_finish gives one (0 none, -1 stop
** now); else it is built at the start, stopping past stop4. The finish
** waits for the build and frees sc (NULL: counts 0). */
typedef struct blk_scorer blk_scorer;
sieve_status blk_scorer_start(cg_pattern *p, const sieve_shape *s, cg_ref mask, const cg_layout *l, int stride, int m,
                              int64_t stop4, int thread, blk_pool *pool, blk_scorer **out, cg_err *e);
sieve_status blk_scorer_finish(blk_scorer *sc, int64_t stop4, int64_t *full, int64_t *part, int *stopped, cg_err *e);

/* cg_layout_bound.c: a lower bound on the visited area of `mask` under
** layout l, in full blocks, partial ones weighing partial_cost, over the
** query-block rows that are multiples of stride (cg_layout_auto.c); it
** stops at the first row where it passes `stop`. exact: it is the exact
** score, every row counted and every pair settled. The layouts bounded
** for one mask and shape share a blk_lbound (NULL out of memory). */
typedef struct blk_lbound blk_lbound;
blk_lbound *blk_lbound_new(cg_pattern *p, const sieve_shape *s, cg_ref mask);
void blk_lbound_free(blk_lbound *b);
sieve_status blk_bound_layout(blk_lbound *b, const cg_layout *l, int stride, double partial_cost, double stop,
                              double *lo, int *exact, cg_err *e);
/* cg_layout_record.c: the bounds of layouts ls[0, n) on the rows that
** are multiples of stride, a layout to a worker at a time, kept in b: the
** rows that are multiples of stride * every whole, the others to the
** first row past the least score a layout bounded whole can have at most
** (ls[0]'s all). Then blk_bound_replay: layout i's bound with stop, as
** blk_bound_layout would make it at stride (every 1) or stride * every,
** read from the record or, past what it holds, made anew; with every 1
** it is b's last bound, which blk_bound_exact settles. Records are
** dropped with b or by the next blk_bound_record. */
sieve_status blk_bound_record(blk_lbound *b, const cg_layout *ls, int n, int stride, int every, double partial_cost,
                              cg_err *e);
sieve_status blk_bound_replay(blk_lbound *b, int i, int every, double partial_cost, double stop, double *lo,
                              int *exact, cg_err *e);
/* For the tests: how many bounds of ls[0, n)'s record, at stops within
** and past what it holds, then settled, differ from those made one by one
** (blk_bound_layout); -1 on failure. *anew: those past what it holds. */
int blk_bound_check_record(blk_lbound *b, const cg_layout *ls, int n, int stride, int every, double partial_cost,
                           int *anew);
/* cg_layout_settle.c: the last bound's layout scored exactly, from what
** the bound left unsettled, where it ran every row (else *exact stays 0
** and *lo is untouched); settling stops at the first row where it passes
** `stop`, *exact 0 and *lo the value so far (below the score). */
sieve_status blk_bound_exact(blk_lbound *b, double partial_cost, double stop, double *lo, int *exact);
/* For the tests: with plain set, witnesses evaluate every key and the
** settling every token pair, without intervals: the values the bounds
** and scores must equal. */
void blk_lbound_plain(blk_lbound *b, int plain);

/* cg_layout_auto.c: cg_layouts_resolve for the table builder, which
** builds the tables of a new choice before its check against identity on
** every row, so that the check reuses the build: *checked, when not NULL,
** is the choice to pass to blk_layouts_check with those tables, which
** keeps it and says whether some class fell back to identity (*rebuild:
** the tables must be built again); its builds take buffers from pool. */
struct cg_auto;
sieve_status blk_layouts_resolve(cg_pattern *p, const sieve_shape *shape, struct cg_auto **checked, cg_err *e);
sieve_status blk_layouts_check(cg_pattern *p, struct cg_auto *a, const cg_tableset *ts, blk_pool *pool, int *rebuild,
                               cg_err *e);
/* Before the build, the checks started on threads of their own beside it
** (the check then finishes them); blk_layouts_stop: those started, given
** up, where the check will not run. */
sieve_status blk_layouts_start(cg_pattern *p, struct cg_auto *a, const sieve_shape *shape, cg_err *e);
void blk_layouts_stop(cg_pattern *p, struct cg_auto *a);

/* cg_blocks_heads.c */
sieve_status blk_check_pattern(const cg_pattern *p, cg_err *e);
int blk_head_table(cg_pattern *p, cg_tableset *ts, int h);
int blk_pos_mask(cg_pattern *p, const cg_tableset *ts, cg_table *t);

#endif
