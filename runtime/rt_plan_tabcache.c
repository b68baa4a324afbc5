/*
** A plan's static block tables in the disk cache, beside its kernel: a
** later plan of the same pattern, shape and config uploads them without
** building them (an irregular mask's tables take 0.1-1 s on the CPU,
** sieve.layout.auto's choice most of it). The key names what the tables
** follow: the pattern the plan builds them from (its IR, whose text names
** its blocks), the shape, the classes with bitmasks, the kernel's rows
** and schedule (the persistent order), and the sources of the builder.
** The layouts sieve.layout.auto chose travel in the entry and are
** adopted (cg_layouts_adopt), so the kernel's key and code follow them.
**
** Entry payload: header | int32 [nclasses][4] layouts (kind, tile) | the
** host_tables words. Anything that does not fit is a note and a build.
*/
#include "rt_plan_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_sha256.h"

#define MAGIC "SIEVETB1"

typedef struct tab_head {
  char magic[8];
  uint32_t nclasses, heads;
  uint64_t bytes, head_off_at, order_at;
  double density;
} tab_head;

/* Reading an entry back costs its bytes' SHA-256 (rt_cache_load) and the
** read: about 200 MB/s here, counted at 150 with a 1.5x margin, so that
** a table the builder makes faster than that (adaspa's 14 MB in 13-24 ms)
** is built again rather than stored. */
#define LOAD_MB_S 150.0
#define MARGIN 1.5

/* $SIEVE_TABLE_CACHE=0 keeps no tables, =1 keeps every static table, and
** otherwise those whose build took longer than reading them would. */
static int policy(void) {
  const char *v = getenv("SIEVE_TABLE_CACHE");
  return v && !strcmp(v, "0") ? 0 : v && !strcmp(v, "1") ? 1 : -1;
}

/* Only tables that hold at every step, built on the host. */
static int cacheable(const rt_plan *p) { return policy() != 0 && !p->dynamic && !rt_plan_gpu_tables(p); }

static int key_of(const rt_plan *p, char *out, size_t n) {
  const cg_pattern *t = rt_plan_tab_pattern(p);
  const sieve_shape *sh = &p->spec.shape;
  char ir[RT_SHA256_HEX];
  if (rt_sha256_hex(t->ir_text, strlen(t->ir_text), ir)) return (int)n; /* no key */
  return snprintf(out, n,
                  "sieve table cache key 1\n"
                  "pattern %s\n"
                  "shape heads=%d frames=%d height=%d width=%d text=%d text_after=%d\n"
                  "bitmasks %x\n"
                  "rows block_m=%d sched=%d\n"
                  "sieve %s source %s\n",
                  ir, sh->heads, sh->frames, sh->height, sh->width, sh->text, sh->text_after,
                  (unsigned)p->spec.bits, p->spec.cfg.block_m, p->spec.cfg.sched, SIEVE_VERSION, rt_source_id);
}

/* Whether the entry's words can be what a build gives this plan. */
static const char *unfit(const rt_plan *p, const tab_head *hd, size_t n) {
  const cg_pattern *t = rt_plan_tab_pattern(p);
  uint64_t heads = (uint64_t)p->spec.shape.heads, lays = 16 * (uint64_t)hd->nclasses;
  if (memcmp(hd->magic, MAGIC, 8)) return "not a table entry";
  if (hd->nclasses != (uint32_t)t->nclasses || hd->heads != heads) return "classes or heads differ";
  if (hd->bytes % 4 || n != sizeof *hd + lays + hd->bytes) return "sizes disagree";
  if (hd->head_off_at % 4 || hd->head_off_at + 4 * heads > hd->bytes) return "head offsets out of place";
  if (!p->spec.cfg.sched != !hd->order_at || (hd->order_at && (hd->order_at % 4 || hd->order_at < hd->head_off_at + 4 * heads ||
                                                                hd->order_at >= hd->bytes)))
    return "tile order out of place";
  if (!(hd->density >= 0 && hd->density <= 1)) return "density out of range";
  if ((int64_t)hd->bytes > cg_tables_limit()) return "past SIEVE_TABLES_MAX_MB";
  return NULL;
}

int rt_plan_tables_from_cache(rt_plan *p, rt_cache *cache, host_tables *h) {
  char key[1024], *why = p->stats.cache_note;
  size_t nw = sizeof p->stats.cache_note, n = 0;
  memset(h, 0, sizeof *h);
  if (!cache || !cacheable(p) || key_of(p, key, sizeof key) >= (int)sizeof key) return 0;
  void *blob = NULL;
  cg_err ce = {0};
  if (rt_cache_load(cache, key, &blob, &n, &ce)) {
    snprintf(why, nw, "%s", ce.msg);
    return 0;
  }
  if (!blob) return 0;
  tab_head hd;
  const char *bad = n < sizeof hd ? "shorter than its header" : NULL;
  if (!bad) memcpy(&hd, blob, sizeof hd);
  if (!bad) bad = unfit(p, &hd, n);
  cg_layout *lays = NULL;
  if (!bad && !(lays = malloc(sizeof *lays * (hd.nclasses ? hd.nclasses : 1)))) bad = "no memory";
  for (uint32_t c = 0; !bad && c < hd.nclasses; c++) {
    int32_t v[4];
    memcpy(v, (char *)blob + sizeof hd + 16 * c, sizeof v);
    lays[c] = (cg_layout){.kind = (cg_layout_kind)v[0], .tile = {v[1], v[2], v[3]}};
  }
  /* The same checks as a build's on the heads' offsets: inside the tables. */
  const int32_t *words = (const int32_t *)((char *)blob + sizeof hd + 16 * (uint64_t)(bad ? 0 : hd.nclasses));
  for (uint32_t i = 0; !bad && i < hd.heads; i++) {
    int32_t off;
    memcpy(&off, (const char *)words + hd.head_off_at + 4 * i, 4);
    if (off < 0 || (uint64_t)off * 4 >= hd.head_off_at) bad = "a head's offset past the tables";
  }
  if (!bad && cg_layouts_adopt(rt_plan_tab_pattern(p), &p->spec.shape, lays, &ce)) bad = ce.msg;
  if (!bad && !(h->buf = malloc(hd.bytes))) bad = "no memory";
  if (bad) {
    snprintf(why, nw, "cached block tables not used (%s); built", bad);
  } else {
    memcpy(h->buf, words, hd.bytes);
    h->bytes = hd.bytes;
    h->head_off_at = hd.head_off_at;
    h->order_at = hd.order_at;
    h->density = hd.density;
  }
  free(lays);
  free(blob);
  return !bad;
}

void rt_plan_tables_to_cache(rt_plan *p, rt_cache *cache, const host_tables *h, double build_ms) {
  char key[1024];
  double load_ms = 1.0 + (double)h->bytes / (LOAD_MB_S * 1e3);
  if (policy() < 0 && build_ms < MARGIN * load_ms) return;
  if (!cache || !cacheable(p) || key_of(p, key, sizeof key) >= (int)sizeof key) return;
  cg_pattern *t = rt_plan_tab_pattern(p);
  size_t nc = (size_t)t->nclasses, lays = 16 * nc, n = sizeof(tab_head) + lays + h->bytes;
  cg_layout *l = malloc(sizeof *l * (nc ? nc : 1));
  char *blob = malloc(n);
  if (l && blob && !cg_layouts_chosen(t, &p->spec.shape, l)) {
    tab_head hd = {.nclasses = (uint32_t)nc, .heads = (uint32_t)p->spec.shape.heads, .bytes = h->bytes,
                   .head_off_at = h->head_off_at, .order_at = h->order_at, .density = h->density};
    memcpy(hd.magic, MAGIC, 8);
    memcpy(blob, &hd, sizeof hd);
    for (size_t c = 0; c < nc; c++) {
      int32_t v[4] = {(int32_t)l[c].kind, l[c].tile[0], l[c].tile[1], l[c].tile[2]};
      memcpy(blob + sizeof hd + 16 * c, v, sizeof v);
    }
    memcpy(blob + sizeof hd + lays, h->buf, h->bytes);
    cg_err ce = {0};
    /* The tables are built either way: a cache that refuses them only
    ** costs the next plan a build. */
    if (rt_cache_store(cache, key, blob, n, &ce))
      snprintf(p->stats.cache_note, sizeof p->stats.cache_note, "%s", ce.msg);
  }
  free(l);
  free(blob);
}
