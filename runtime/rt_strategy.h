/*
** Mask-search files: each head's class at each (step, layer), chosen by a
** profiling selection in search mode and read by one in file mode
** (cg_profile_mode). This is STA's mask search (FastVideo's STA_searching
** writes per-(step, layer, head) losses of each candidate window against
** full attention, STA_tuning keeps the candidate of least L2 loss, and
** STA_inference loads the choice), in sieve's terms: the candidates are
** the pattern's head classes.
**
** The file is text, one record a line; '#' lines are comments:
**   sieve-mask-search 1
**   pattern sta
**   shape T21 Y30 X52 text0 heads12
**   classes 3,1,10 1,5,7 3,3,3 1,6,5 1,3,10 3,6,1
**   calls 2
**   at 12 0 3,3,3 1,5,7 ... (step, layer, then one class name per head)
** A file names the pattern, the shape (the one its kernels are compiled
** for, cg_shape_for) and the classes in order; a plan refuses a file whose
** header differs from its own, a damaged line, or a (step, layer) the file
** does not hold, rather than guess.
*/
#ifndef RT_STRATEGY_H
#define RT_STRATEGY_H

#include "cg_pattern.h"
#include "cg_shape.h"

#define RT_STRATEGY_MAGIC "sieve-mask-search 1"

typedef struct rt_strategy rt_strategy;

/* An empty strategy for p on shape (resolved here): errors are added to it. */
sieve_status rt_strategy_new(const cg_pattern *p, const sieve_shape *shape, rt_strategy **out, cg_err *e);

/*
** Adds one profiling of (step, layer): err[h * nc + c] is head h's error
** under class c (the mean squared difference to full attention over the
** sampled rows, summed over the batch). Sums build up across calls (STA
** averages its prompts' losses before the argmin).
*/
sieve_status rt_strategy_add(rt_strategy *s, int step, int layer, const double *err, cg_err *e);

/* Each head's class at (step, layer): the least summed error (the first
** class on ties). NULL when the strategy holds no such entry. */
const int *rt_strategy_at(const rt_strategy *s, int step, int layer);

/* Entries ((step, layer) pairs) held. */
int rt_strategy_count(const rt_strategy *s);

/* The file's text (malloc'd): header, then one line per entry in the order
** they were first added. */
char *rt_strategy_format(const rt_strategy *s);

/* Writes the file whole or not at all (a temp file renamed over it). */
sieve_status rt_strategy_save(const rt_strategy *s, const char *path, cg_err *e);

/*
** Reads text for p on shape; `what` names the file in messages. A header
** that differs from p and shape, or a damaged line, is refused with the
** line's number.
*/
sieve_status rt_strategy_parse(const char *text, const char *what, const cg_pattern *p, const sieve_shape *shape,
                               rt_strategy **out, cg_err *e);
sieve_status rt_strategy_load(const char *path, const cg_pattern *p, const sieve_shape *shape, rt_strategy **out,
                              cg_err *e);

void rt_strategy_free(rt_strategy *s);

#endif
