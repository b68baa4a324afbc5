/*
** The tuner's config space: the knobs' values, restriction by a spec
** string, and enumeration with pruning before anything is compiled.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_tune.h"

static const int all_bm[] = {64, 128, 192}, all_bn[] = {32, 64, 128, 192},
                 all_warps[] = {4, 8, CG_WS_WARPS, CG_WS3_WARPS}, all_stages[] = {1, 2, 3, 4},
                 all_sched[] = {CG_SCHED_GRID, CG_SCHED_STATIC, CG_SCHED_ATOMIC};

void rt_tune_space_all(rt_tune_space *sp) {
  memset(sp, 0, sizeof *sp);
  memcpy(sp->bm, all_bm, sizeof all_bm);
  sp->nbm = 3;
  memcpy(sp->bn, all_bn, sizeof all_bn);
  sp->nbn = 4;
  memcpy(sp->warps, all_warps, sizeof all_warps);
  sp->nwarps = 4;
  memcpy(sp->stages, all_stages, sizeof all_stages);
  sp->nstages = 4;
  memcpy(sp->sched, all_sched, sizeof all_sched);
  sp->nsched = 3;
}

/* ----------------------------------------------------------------- spec */

typedef struct knob {
  const char *name, *alias;
  const int *valid;
  int nvalid;
} knob;

#define NKNOBS 5
static const knob knobs[NKNOBS] = {
  {"bm", "block_m", all_bm, 3},
  {"bn", "block_n", all_bn, 4},
  {"warps", NULL, all_warps, 4},
  {"stages", NULL, all_stages, 4},
  {"sched", NULL, all_sched, 3},
};

static void knob_slot(rt_tune_space *sp, int k, int **vals, int **n) {
  int *v[NKNOBS] = {sp->bm, sp->bn, sp->warps, sp->stages, sp->sched};
  int *c[NKNOBS] = {&sp->nbm, &sp->nbn, &sp->nwarps, &sp->nstages, &sp->nsched};
  *vals = v[k];
  *n = c[k];
}

static int find_knob(const char *s, size_t n) {
  for (int k = 0; k < NKNOBS; k++)
    if ((strlen(knobs[k].name) == n && !strncmp(s, knobs[k].name, n)) ||
        (knobs[k].alias && strlen(knobs[k].alias) == n && !strncmp(s, knobs[k].alias, n)))
      return k;
  return -1;
}

static const char *valid_text(const knob *k, char *buf, size_t n) {
  size_t used = 0;
  for (int i = 0; i < k->nvalid; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? ", " : "", k->valid[i]);
  return buf;
}

/* "64,128" for knob k: each value valid, none repeated. */
static sieve_status parse_values(int k, const char *s, size_t len, rt_tune_space *sp, cg_err *e) {
  int *vals, *n;
  char item[32], valid[64];
  knob_slot(sp, k, &vals, &n);
  *n = 0;
  for (size_t i = 0; i <= len;) {
    size_t w = strcspn(s + i, ",;");
    if (w > len - i) w = len - i;
    snprintf(item, sizeof item, "%.*s", (int)(w < 31 ? w : 31), s + i);
    char *end;
    long v = strtol(item, &end, 10);
    int ok = *item && !*end;
    for (int j = 0; ok && j < knobs[k].nvalid && knobs[k].valid[j] != v; j++)
      if (j == knobs[k].nvalid - 1) ok = 0;
    if (!ok)
      return cg_fail(e, SIEVE_ERR_ARG, "configs: %s=%s is not one of %s", knobs[k].name, item,
                     valid_text(&knobs[k], valid, sizeof valid));
    int dup = 0;
    for (int j = 0; j < *n; j++) dup |= vals[j] == v;
    if (!dup) vals[(*n)++] = (int)v;
    i += w + 1;
  }
  return SIEVE_OK;
}

sieve_status rt_tune_space_parse(const char *spec, rt_tune_space *sp, cg_err *e) {
  rt_tune_space_all(sp);
  for (const char *s = spec ? spec : ""; *s;) {
    size_t n = strcspn(s, ";");
    const char *eq = memchr(s, '=', n);
    if (n == 0) {
      s++;
      continue;
    }
    if (!eq) return cg_fail(e, SIEVE_ERR_ARG, "configs: expected KEY=VALUES, got '%.*s'", (int)n, s);
    int k = find_knob(s, (size_t)(eq - s));
    if (k < 0)
      return cg_fail(e, SIEVE_ERR_ARG, "configs: unknown key '%.*s' (keys: bm, bn, warps, stages, sched)",
                     (int)(eq - s), s);
    sieve_status st = parse_values(k, eq + 1, (size_t)(s + n - eq - 1), sp, e);
    if (st) return st;
    s += n + (s[n] == ';');
  }
  return SIEVE_OK;
}

/* ----------------------------------------------------------- candidates */

void rt_tune_config_text(const cg_attn_config *c, char *buf, size_t n) {
  int k = snprintf(buf, n, "bm=%d bn=%d warps=%d stages=%d", c->block_m, c->block_n, c->warps, c->stages);
  if (c->sched && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, " sched=%d", c->sched);
}

static void prune(const cg_attn_spec *s, int smem_limit, rt_tune_cand *c) {
  cg_attn_spec sp = *s;
  cg_err e = {0};
  sp.cfg = c->cfg;
  size_t smem = cg_attn_smem_bytes(&sp);
  if (cg_attn_check(&sp, &e)) {
    c->state = RT_TUNE_PRUNED;
    snprintf(c->note, sizeof c->note, "%.500s", e.msg);
  } else if (smem_limit > 0 && smem > (size_t)smem_limit) {
    c->state = RT_TUNE_PRUNED;
    snprintf(c->note, sizeof c->note, "needs %zu bytes of shared memory; the device allows %d",
             smem, smem_limit);
  }
}

static int same(const cg_attn_config *a, const cg_attn_config *b) {
  return !memcmp(a, b, sizeof *a);
}

int rt_tune_enumerate(const cg_attn_spec *s, const rt_tune_space *sp, int smem_limit,
                      rt_tune_cand *out) {
  cg_attn_config def = cg_attn_default_config(s);
  int n = 0, def_at = -1;
  for (int a = 0; a < sp->nbm; a++)
    for (int b = 0; b < sp->nbn; b++)
      for (int w = 0; w < sp->nwarps; w++)
        for (int g = 0; g < sp->nstages; g++)
          for (int h = 0; h < sp->nsched && n < RT_TUNE_MAX; h++) {
            /* A schedule is a variant of the warp-specialised kernels only:
            ** the others are not candidates at all, not even pruned ones. */
            if (sp->sched[h] && sp->warps[w] != CG_WS_WARPS && sp->warps[w] != CG_WS3_WARPS) continue;
            rt_tune_cand *c = &out[n];
            memset(c, 0, sizeof *c);
            c->cfg = (cg_attn_config){sp->bm[a], sp->bn[b], sp->warps[w], sp->stages[g], sp->sched[h]};
            c->is_default = same(&c->cfg, &def);
            if (c->is_default) def_at = n;
            prune(s, smem_limit, c);
            n++;
          }
  /* The default first: the baseline every other candidate is judged by is
  ** measured even when the budget runs out early. */
  if (def_at > 0) {
    rt_tune_cand d = out[def_at];
    memmove(out + 1, out, sizeof *out * (size_t)def_at);
    out[0] = d;
  }
  return n;
}

/* -------------------------------------------------------------- states */

static const char *const state_names[] = {
  "pending", "pruned", "build-failed", "run-failed", "wrong", "ok", "skipped",
};

const char *rt_tune_state_name(rt_tune_state s) {
  return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "?";
}

int rt_tune_state_parse(const char *s, rt_tune_state *out) {
  for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++)
    if (!strcmp(s, state_names[i])) {
      *out = (rt_tune_state)i;
      return 0;
    }
  return -1;
}
