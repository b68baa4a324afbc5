/*
** Interval evaluation: what an expression can take over a box of token
** coordinates. Sound for every op: the true value of every node, for every
** pair of tokens in the boxes, lies in the node's interval. Booleans are
** subsets of [0, 1]. A bound that would overflow widens to the whole int64
** range, which covers the wrapped value too.
**
** It runs the phases of a compiled program (cg_eval.h) with intervals in
** place of values: the Q and K phases once per block, the QK phase per
** query block against a vector of key blocks.
*/
#ifndef CG_INTERVAL_H
#define CG_INTERVAL_H

#include "cg_eval.h"

typedef struct cg_ival {
  int64_t lo, hi;
} cg_ival;

/* The coordinates of a block: an interval per CG_IN_* input. */
typedef struct cg_box {
  cg_ival v[CG_NIN];
} cg_box;

/* Classification of a block pair. */
enum { CG_BLK_EMPTY = 0, CG_BLK_UNDECIDED = 1, CG_BLK_FULL = 2 };

/* One op on intervals (CG_OP_COPY included); for tests and the executor. */
cg_ival cg_ival_apply(int op, cg_ival a, cg_ival b, cg_ival c);

/* Per-thread buffers of one bound program. */
typedef struct cg_iscratch cg_iscratch;
cg_iscratch *cg_iscratch_new(const cg_prog *p);
void cg_iscratch_free(cg_iscratch *s);

/* Interface intervals of n boxes (query side when key_side is 0): value j
** of box i goes to out[j * ld + i]. */
void cg_ival_side(const cg_prog *p, int key_side, const cg_box *boxes, int64_t n,
                  cg_ival *out, int64_t ld, cg_iscratch *s);

/* The root's interval for one query block (interfaces qv) against n key
** blocks (kv[j * ldk + i]), classified into out[0..n) as CG_BLK_*. */
void cg_ival_row(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk,
                 int n, uint8_t *out, cg_iscratch *s);

/* As cg_ival_row, and per undecided key block the boolean QK instructions
** (comparisons and logic) whose interval is the single value 0 or 1:
** dec/val bits as cg_spec_new takes them (zero for decided blocks). */
void cg_ival_row_sig(const cg_prog *p, const cg_ival *qv, const cg_ival *kv, int64_t ldk, int n,
                     uint8_t *out, uint64_t *dec, uint64_t *val, cg_iscratch *s);

/*
** As cg_ival_row_sig over n (query block, key block) pairs at once: lane i
** takes query interfaces qv[j * ldq + qi[i]] and key interfaces
** kv[j * ldk + ki[i]] (qi NULL: qv[j * ldq] in every lane). Rows and
** blocks that leave few lanes each are evaluated together this way, since
** the executor's cost per instruction is paid per call, not per lane. dec
** and val may be NULL.
*/
void cg_ival_pairs_sig(const cg_prog *p, const cg_ival *qv, int64_t ldq, const int32_t *qi, const cg_ival *kv,
                       int64_t ldk, const int32_t *ki, int n, uint8_t *out, uint64_t *dec, uint64_t *val,
                       cg_iscratch *s);

/*
** As cg_ival_pairs_sig through a specialised phase (cg_spec_new), without
** signatures: over sub-boxes of the region it was specialised to, it is
** sound, and shorter than the whole phase and often tighter. Only live
** interfaces are read.
*/
void cg_ival_spec_pairs(const cg_prog *p, const cg_spec *sp, const cg_ival *qv, int64_t ldq, const int32_t *qi,
                        const cg_ival *kv, int64_t ldk, const int32_t *ki, int n, uint8_t *out, cg_iscratch *s);

#endif
