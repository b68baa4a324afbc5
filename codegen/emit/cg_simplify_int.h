/*
** cg_simplify's passes over booleans (cg_simplify_cond.c): an expression
** rewritten with what its context makes known (cg_simplify.h).
*/
#ifndef CG_SIMPLIFY_INT_H
#define CG_SIMPLIFY_INT_H

#include "cg_expr.h"

/* root with the booleans known where they are read substituted; root
** itself when the rewrite would take too long; CG_NONE when out of memory. */
cg_ref cg_simplify_conds(cg_graph *g, cg_ref root);

#endif
