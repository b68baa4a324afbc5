/*
** Shapes (cg_shape.c): the limits sieve can index, and the shape a pattern
** runs on.
*/
#ifndef CG_SHAPE_H
#define CG_SHAPE_H

#include "cg_err.h"
#include "cg_pattern.h"

/* cg_shape_check is sieve_shape_check with a cg_err.
** cg_shape_for is the shape a pattern runs on: `s` with the text geometry
** the pattern fixes, if it fixes one. */
sieve_status cg_shape_check(const sieve_shape *s, cg_err *e);
void cg_shape_for(const cg_pattern *p, const sieve_shape *s, sieve_shape *out);

#endif
