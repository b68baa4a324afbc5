/*
** Pattern IR lifetime and canonical text.
*/
#include "cg_pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cg_pattern *cg_pattern_new(void) {
  cg_pattern *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->arena = cg_arena_new();
  p->g = cg_graph_new();
  if (!p->arena || !p->g) {
    cg_pattern_free(p);
    return NULL;
  }
  p->frames = p->height = p->width = -1;
  p->text = p->text_after = -1;
  return p;
}

void cg_pattern_free(cg_pattern *p) {
  if (!p) return;
  cg_graph_free(p->g);
  cg_arena_free(p->arena);
  free(p->ir_text);
  free(p);
}

cg_pattern *cg_pattern_dense_of(const cg_pattern *p, cg_err *e) {
  cg_pattern *d = cg_pattern_new();
  if (!d) {
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    return NULL;
  }
  d->name = "dense";
  d->source = p->source ? cg_strdup(d->arena, p->source) : NULL;
  /* The pattern's blocks are left behind: the warm-up's kernel takes the
  ** dense defaults of its head dim (AdaSpa's 64-token search blocks ran its
  ** dense steps at 1.54x the dense kernel's time on hunyuan-720p). */
  d->frames = p->frames;
  d->height = p->height;
  d->width = p->width;
  d->text = p->text;
  d->text_after = p->text_after;
  d->nclasses = d->period = 1;
  d->classes = cg_alloc(d->arena, sizeof(cg_class));
  d->head_class = cg_alloc(d->arena, sizeof(int));
  if (!d->classes || !d->head_class) {
    cg_pattern_free(d);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    return NULL;
  }
  d->classes[0] = (cg_class){.name = "default", .layout = {.kind = CG_LAYOUT_IDENTITY}, .mask = cg_bool(d->g, 1)};
  d->head_class[0] = 0;
  if (cg_pattern_finish(d, e)) {
    cg_pattern_free(d);
    return NULL;
  }
  return d;
}

cg_pattern *cg_pattern_with_blocks(const cg_pattern *p, int bq, int bk, cg_err *e) {
  cg_pattern *v = malloc(sizeof *v);
  if (!v) {
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    return NULL;
  }
  *v = *p;
  v->block_q = bq;
  v->block_k = bk;
  v->ir_text = NULL;
  if (cg_pattern_finish(v, e)) {
    free(v);
    return NULL;
  }
  return v;
}

void cg_pattern_view_free(cg_pattern *v) {
  if (!v) return;
  free(v->ir_text);
  free(v);
}

const char *cg_layout_name(cg_layout_kind k) {
  switch (k) {
  case CG_LAYOUT_IDENTITY: return "identity";
  case CG_LAYOUT_TRANSPOSE: return "transpose";
  case CG_LAYOUT_TILE: return "tile";
  }
  return "?";
}

static const char *select_name(cg_select_kind k) {
  switch (k) {
  case CG_SELECT_STATIC: return "static";
  case CG_SELECT_LSE_SEARCH: return "lse_search";
  case CG_SELECT_PROFILE: return "profile";
  }
  return "?";
}

sieve_status cg_pattern_check_classes(const cg_pattern *p, cg_err *e) {
  if (p->nclasses < 1 || p->period < 1 || !p->head_class)
    return cg_fail(e, SIEVE_ERR_ARG, "pattern %s has no head classes", p->name ? p->name : "?");
  for (int r = 0; r < p->period; r++)
    if (p->head_class[r] < 0 || p->head_class[r] >= p->nclasses)
      return cg_fail(e, SIEVE_ERR_ARG, "head residue %d names class %d of %d", r, p->head_class[r],
                     p->nclasses);
  return SIEVE_OK;
}

/*
** The text names everything that changes the generated code or the tables,
** and nothing else: not the script's file name, not parameter values (they
** are already folded into the masks), not construction order.
*/
sieve_status cg_pattern_finish(cg_pattern *p, cg_err *e) {
  cg_buf b = {0};
  int r = cg_buf_printf(&b, "pattern %s\nblock q=%d k=%d\ngeometry T=%d Y=%d X=%d text=%d after=%d\n",
                        p->name, p->block_q, p->block_k, p->frames, p->height, p->width, p->text,
                        p->text_after);
  const cg_selection *s = &p->sel;
  r |= cg_buf_printf(&b, "selection %s recall=%.17g topk=%d samples=%d steps=", select_name(s->kind),
                     s->recall, s->topk, s->samples);
  for (int i = 0; i < s->nsteps; i++) r |= cg_buf_printf(&b, "%s%d", i ? "," : "", s->steps[i]);
  if (s->sparsity > 0) r |= cg_buf_printf(&b, " sparsity=%.17g", s->sparsity);
  if (s->sample_range > 0) r |= cg_buf_printf(&b, " range=%d", s->sample_range);
  /* The file's name changes no code: the mode alone is printed. */
  if (s->mode) r |= cg_buf_printf(&b, " mode=%s", s->mode == CG_PROFILE_SEARCH ? "search" : "file");
  r |= cg_buf_printf(&b, " levels=");
  for (int i = 0; i < s->nlevels; i++) r |= cg_buf_printf(&b, "%s%d", i ? "," : "", s->levels[i]);
  if (s->tiers > 0) r |= cg_buf_printf(&b, " tiers=%.17g", s->tiers);
  if (s->text_sink) r |= cg_buf_printf(&b, " text_sink");
  if (s->cache_lse) r |= cg_buf_printf(&b, " cache_lse");
  /* Printed only when set, so patterns without one keep their identity. */
  if (p->dense_steps || p->dense_layers)
    r |= cg_buf_printf(&b, "\nschedule dense_steps=%d dense_layers=%d", p->dense_steps, p->dense_layers);
  r |= cg_buf_printf(&b, "\nheads period=%d classes=", p->period);
  for (int i = 0; i < p->period; i++) r |= cg_buf_printf(&b, "%s%d", i ? "," : "", p->head_class[i]);
  r |= cg_buf_printf(&b, "\n");
  /* Profiling masks, where set, are roots after the class masks. */
  int nroots = p->nclasses * (s->pmask ? 2 : 1);
  cg_ref *roots = malloc(sizeof(cg_ref) * (size_t)(nroots + 1));
  const char **names = malloc(sizeof(char *) * (size_t)(nroots + 1));
  char (*nb)[64] = malloc(64 * (size_t)(nroots + 1));
  if (!roots || !names || !nb) r = -1;
  for (int i = 0; !r && i < p->nclasses; i++) {
    const cg_class *c = &p->classes[i];
    if (p->auto_layout && p->auto_layout[i])
      r |= cg_buf_printf(&b, "class %d %s layout=auto\n", i, c->name);
    else
      r |= cg_buf_printf(&b, "class %d %s layout=%s tile=%d,%d,%d\n", i, c->name,
                         cg_layout_name(c->layout.kind), c->layout.tile[0], c->layout.tile[1],
                         c->layout.tile[2]);
    roots[i] = c->mask;
    snprintf(nb[i], 64, "mask%d", i);
    names[i] = nb[i];
  }
  for (int i = 0; !r && s->pmask && i < p->nclasses; i++) {
    roots[p->nclasses + i] = s->pmask[i];
    snprintf(nb[p->nclasses + i], 64, "profile%d", i);
    names[p->nclasses + i] = nb[p->nclasses + i];
  }
  if (!r) r = cg_dump(p->g, roots, nroots, names, &b);
  free(roots);
  free(names);
  free(nb);
  if (r) {
    cg_buf_free(&b);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory writing the pattern IR");
  }
  free(p->ir_text);
  p->ir_text = b.s;
  p->ir_hash = cg_hash_bytes(b.s, b.len);
  return SIEVE_OK;
}
