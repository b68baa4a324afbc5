/*
** What `sieve` shows of a loaded pattern beyond the public API: the shape
** its tables run on and how its blocks are selected. Both are read from the
** pattern IR, the one place that knows them.
*/
#include <stdio.h>

#include "cg_blocks.h"
#include "cli.h"
#include "lp.h"

/* Steps as "10,20,30", cut short with "..." when long. */
static void steps_text(const cg_selection *sel, char *buf, size_t len) {
  size_t n = 0;
  int i = 0;
  snprintf(buf, len, "none");
  for (; i < sel->nsteps && n + 16 < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%d", i ? "," : "", sel->steps[i]);
  if (i < sel->nsteps) snprintf(buf + n, len - n, ",...");
}

int cli_pattern_selection(const sieve_pattern *p, char *buf, size_t len) {
  const cg_selection *sel = &lp_pattern_ir(p)->sel;
  char steps[96];
  steps_text(sel, steps, sizeof steps);
  switch (sel->kind) {
  case CG_SELECT_STATIC: return 0;
  case CG_SELECT_LSE_SEARCH:
  {
    char lv[96] = "";
    size_t n = 0;
    for (int i = 0; i < sel->nlevels && n + 16 < sizeof lv; i++)
      n += (size_t)snprintf(lv + n, sizeof lv - n, "%s%d", i ? "," : ", levels ", sel->levels[i]);
    char ex[160] = "";
    size_t m = 0;
    if (sel->tiers > 0)
      m += (size_t)snprintf(ex + m, sizeof ex - m, ", head tiers above recall %g", sel->tiers);
    if (sel->text_sink) m += (size_t)snprintf(ex + m, sizeof ex - m, ", text sink");
    if (sel->cache_lse) snprintf(ex + m, sizeof ex - m, ", later searches from the cached LSE");
    if (sel->sparsity > 0)
      snprintf(buf, len, "LSE search (top-k: each row keeps %g of its key blocks%s%s) at steps %s",
               1 - sel->sparsity, lv, ex, steps);
    else
      snprintf(buf, len, "LSE search (top-p: recall %g, at most %d blocks%s%s) at steps %s", sel->recall,
               sel->topk, lv, ex, steps);
    return 1;
  }
  case CG_SELECT_PROFILE:
    if (sel->mode == CG_PROFILE_FILE)
      snprintf(buf, len, "each head's class from the mask-search file %s at steps %s", sel->file, steps);
    else
      snprintf(buf, len, "%s (%d sampled queries per head) at steps %s",
               sel->mode == CG_PROFILE_SEARCH ? "mask search, full attention meanwhile" : "profiling", sel->samples,
               steps);
    return 1;
  }
  return 0;
}

void cli_pattern_shape(const sieve_pattern *p, sieve_shape *s) {
  sieve_shape in = *s;
  sieve_pattern_shape(p, &in, s);
}
