/*
** Rewrites an expression a kernel is about to lower into an equal one that
** costs less to compute, given the ranges of its variables (the intervals
** cg_lower uses). Masks composed with a layout divide coordinates that the
** layout built by multiplying: sta asks for k.t // 6 of k.t = a * 6 + lt
** with 0 <= lt < 6, once per key column, and the composed graph spells out
** every ragged-tile case of lt on the way. LLVM's InstCombine finds some of
** this after the fact, slowly, and not through selects; here it costs one
** pass over the graph:
**
**   (a * m + r) // c  ->  a * (m / c) + r // c      (m a multiple of c)
**   (a * m + r) %  c  ->  r % c
**   (x // a) // c     ->  x // (a * c)              (a, c > 0)
**   select(p, u, v) // c  ->  select(p, u // c, v // c), where an arm folds
**   x // c, x % c     ->  a constant, x or x - k c, where x's interval
**                         lies within one multiple of c
**   k * (y % c) + k * c * (y // c)  ->  k * y   (in a sum of any terms)
**   and(x, y)         ->  and(x with y true, y), and so on for or, not and
**                         select (cg_simplify_int.h)
**
** Floor division and modulo by a positive constant obey these for every
** integer, so the result equals the original wherever the variables lie in
** their ranges. The rewritten root lives in the same graph.
**
** svg's bands are |i - j| < w over token indices, composed with the
** identity or the transposed layout: i = t * H * W + y * W + x, each
** coordinate a select on the text test around a quotient or remainder of
** the position, under a test excluding text. The last two rules take the
** selects away and put the position back together: the mask becomes one
** band over positions, the same for both head classes (at cogvideox-1.5,
** 274 divisions and 137 remainders a thread left after LLVM's O3, none now).
*/
#ifndef CG_SIMPLIFY_H
#define CG_SIMPLIFY_H

#include "cg_lower.h"

/* The simplified root; CG_NONE only when out of memory. */
cg_ref cg_simplify(cg_graph *g, cg_ref root, const cg_range ranges[CG_NVARS]);

#endif
