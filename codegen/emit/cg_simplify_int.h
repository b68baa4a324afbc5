/*
** Private to cg_simplify.c and cg_simplify_cond.c: the booleans known from
** their context (cg_simplify_cond.c), and the memo both passes keep of
** what they rewrote a node to (cg_simplify_memo.c).
*/
#ifndef CG_SIMPLIFY_INT_H
#define CG_SIMPLIFY_INT_H

#include "cg_expr.h"

/* root with the booleans known where they are read substituted; root
** itself when the rewrite would take too long; CG_NONE when out of memory. */
cg_ref cg_simplify_conds(cg_graph *g, cg_ref root);

/* What node x became under a pass's (tag, c): quotient or remainder by c
** (tag: which), or x in the context numbered tag (c unused, 0). */
typedef struct cg_memo_ent {
  cg_ref x, out;
  int32_t tag;
  int64_t c;
} cg_memo_ent;

/* Open addressing, at most half full, so a probe always meets an empty
** entry (x == CG_NONE). */
typedef struct cg_memo {
  cg_memo_ent *tab;
  int n, used;
} cg_memo;

/* Room for one more entry; -1 when out of memory (the memo is unchanged). */
int cg_memo_grow(cg_memo *m);
/* The key's entry: its out where x != CG_NONE, else where it goes. */
cg_memo_ent *cg_memo_slot(cg_memo *m, cg_ref x, int32_t tag, int64_t c);
/* Record x -> out; the slot is found again, as the table may have grown
** since cg_memo_slot was asked (a rewrite recurses before it records). */
void cg_memo_put(cg_memo *m, cg_ref x, int32_t tag, int64_t c, cg_ref out);
void cg_memo_free(cg_memo *m);

#endif
