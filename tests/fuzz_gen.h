/*
** A structure-aware generator of pattern scripts for the fuzz target: the
** input bytes choose, one decision at a time, a script in the DSL (every
** primitive and combinator, user functions, deep arithmetic chains, wide
** unions, 32-bit edge constants, params with overrides, block sizes,
** layouts, head classes and selections). Byte mutations of Lua text rarely
** get past the parser; these scripts reach the tables and the generator.
** Out of bytes, every choice is 0, so any input gives a script.
*/
#ifndef FUZZ_GEN_H
#define FUZZ_GEN_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct fz_gen {
  const uint8_t *p;
  size_t n;
  char *out;
  size_t len, cap;
  int fn;          /* inside sieve.mask(function(q, k) ...): q and k are locals */
  int nover;       /* overrides chosen */
  char over[4][32];
} fz_gen;

static unsigned fz_take(fz_gen *g) {
  if (!g->n) return 0;
  g->n--;
  return *g->p++;
}
static unsigned fz_pick(fz_gen *g, unsigned n) { return fz_take(g) % n; }

static void fz_put(fz_gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fz_put(fz_gen *g, const char *fmt, ...) {
  if (g->len >= g->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(g->out + g->len, g->cap - g->len, fmt, ap);
  va_end(ap);
  if (k > 0) g->len = g->len + (size_t)k < g->cap ? g->len + (size_t)k : g->cap - 1;
}

static long long fz_const(fz_gen *g) {
  static const long long edge[] = {0, 1, -1, 2, 3, 7, 64, 65536, 46341, 2147483647, -2147483647 - 1,
                                   2147483648LL, -65536, 1 << 20};
  switch (fz_pick(g, 4)) {
  case 0: return edge[fz_pick(g, sizeof edge / sizeof edge[0])];
  case 1: {
    uint32_t v = fz_take(g) | fz_take(g) << 8 | fz_take(g) << 16 | (uint32_t)fz_take(g) << 24;
    return (int32_t)v;
  }
  default: return (long long)fz_pick(g, 17) - 4;
  }
}

static void fz_int(fz_gen *g, int depth);
static void fz_bool(fz_gen *g, int depth);

static void fz_side(fz_gen *g) { fz_put(g, g->fn ? "%s" : "sieve.%s", fz_pick(g, 2) ? "q" : "k"); }

static void fz_int(fz_gen *g, int depth) {
  static const char *const field[] = {"t", "y", "x", "index"};
  unsigned c = depth <= 0 ? fz_pick(g, 3) : fz_pick(g, 18);
  switch (c) {
  case 0: fz_side(g); fz_put(g, ".%s", field[fz_pick(g, 4)]); return;
  case 1: fz_put(g, "%lld", fz_const(g)); return;
  case 2: fz_put(g, "%s", (const char *[]){"sieve.head", "sieve.step", "sieve.layer", "param.n"}[fz_pick(g, 4)]); return;
  case 3: case 4: case 5: case 6: case 7: case 8: {
    static const char *const op[] = {"+", "-", "*", "//", "/", "%"};
    fz_put(g, "(");
    fz_int(g, depth - 1);
    fz_put(g, " %s ", op[c - 3]);
    fz_int(g, depth - 1);
    fz_put(g, ")");
    return;
  }
  case 9: fz_put(g, "(-"); fz_int(g, depth - 1); fz_put(g, ")"); return;
  case 10: case 11: {
    int n = 1 + (int)fz_pick(g, 4);
    fz_put(g, "sieve.%s(", c == 10 ? "min" : "max");
    for (int i = 0; i < n; i++) {
      if (i) fz_put(g, ", ");
      fz_int(g, depth - 1);
    }
    fz_put(g, ")");
    return;
  }
  case 12: fz_put(g, "sieve.abs("); fz_int(g, depth - 1); fz_put(g, ")"); return;
  case 13: fz_put(g, "("); fz_int(g, depth - 1); fz_put(g, "):abs()"); return;
  case 14:
    fz_put(g, "sieve.choose(");
    fz_bool(g, depth - 1);
    fz_put(g, ", ");
    fz_int(g, depth - 1);
    fz_put(g, ", ");
    fz_int(g, depth - 1);
    fz_put(g, ")");
    return;
  case 15: {  /* a deep chain, past the depth limit or not */
    unsigned n = fz_take(g);
    fz_put(g, "(function() local e = ");
    fz_int(g, 0);
    fz_put(g, " for i = 1, %u do e = e * %lld + ", n, fz_const(g));
    fz_int(g, 0);
    fz_put(g, " end return e end)()");
    return;
  }
  default: fz_side(g); fz_put(g, ".%s", field[fz_pick(g, 4)]); return;
  }
}

static void fz_bool(fz_gen *g, int depth) {
  unsigned c = depth <= 0 ? fz_pick(g, 12) : fz_pick(g, 32);
  switch (c) {
  case 0: fz_put(g, "sieve.dense()"); return;
  case 1: fz_put(g, "sieve.token_window(%lld)", fz_const(g)); return;
  case 2: fz_put(g, "sieve.frame_window(%s)", fz_pick(g, 2) ? "param.n" : "1"); return;
  case 3: fz_put(g, "sieve.spatial()"); return;
  case 4: fz_put(g, "sieve.temporal()"); return;
  case 5: fz_put(g, "sieve.causal_frames()"); return;
  case 6: fz_put(g, "sieve.text_rows()"); return;
  case 7: fz_put(g, "sieve.text_cols()"); return;
  case 8: fz_side(g); fz_put(g, ".text"); return;
  case 9:
    fz_put(g, "sieve.tile_window(%u, %u, %u%s)", fz_pick(g, 3), fz_pick(g, 3), fz_pick(g, 3),
           fz_pick(g, 2) ? ", {1, 2, 4}" : "");
    return;
  case 10:
    fz_put(g, "sieve.anchors{frames = {%u, %u}, text = %s, both = %s}", fz_pick(g, 4), fz_pick(g, 4),
           fz_pick(g, 2) ? "true" : "false", fz_pick(g, 2) ? "true" : "false");
    return;
  case 11:
    fz_put(g, "sieve.rotating_anchors{period = %u, stride = %u, layer_stride = %u, offset = %u}",
           1 + fz_pick(g, 5), fz_pick(g, 3), fz_pick(g, 3), fz_pick(g, 4));
    return;
  case 12: case 13: case 14: case 15: case 16: case 17: {
    static const char *const cmp[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    fz_put(g, "(");
    fz_int(g, depth - 1);
    fz_put(g, "):%s(", cmp[c - 12]);
    fz_int(g, depth - 1);
    fz_put(g, ")");
    return;
  }
  case 18: case 19: case 20: {
    static const char *const op[] = {"&", "|", "~"};
    fz_put(g, "(");
    fz_bool(g, depth - 1);
    fz_put(g, " %s ", op[c - 18]);
    fz_bool(g, depth - 1);
    fz_put(g, ")");
    return;
  }
  case 21: fz_put(g, "(~"); fz_bool(g, depth - 1); fz_put(g, ")"); return;
  case 22: case 23: case 24: case 25: {
    static const char *const f[] = {"all", "any", "union", "intersection"};
    int n = (int)fz_pick(g, 5);
    fz_put(g, "sieve.%s(", f[c - 22]);
    for (int i = 0; i < n; i++) {
      if (i) fz_put(g, ", ");
      fz_bool(g, depth - 1);
    }
    fz_put(g, ")");
    return;
  }
  case 26:
    fz_put(g, "sieve.difference(");
    fz_bool(g, depth - 1);
    fz_put(g, ", ");
    fz_bool(g, depth - 1);
    fz_put(g, ")");
    return;
  case 27: fz_put(g, "sieve.not_("); fz_bool(g, depth - 1); fz_put(g, ")"); return;
  case 28: {  /* a wide union, past the size limit or not */
    unsigned n = fz_take(g) * 8u;
    fz_put(g, "(function() local m = {} for i = 1, %u do m[i] = (", n);
    fz_int(g, 1);
    fz_put(g, "):eq(i %% %u) end return sieve.union(m) end)()", 1 + fz_pick(g, 50));
    return;
  }
  case 29:
    if (!g->fn) {
      g->fn = 1;
      fz_put(g, "sieve.mask(function(q, k) return ");
      fz_bool(g, depth - 1);
      fz_put(g, " end)");
      g->fn = 0;
      return;
    }
    /* fall through */
  case 30:
    fz_put(g, "sieve.per_head(function(h) return h %% 2 == 0 and ");
    fz_bool(g, depth - 1);
    fz_put(g, " or ");
    fz_bool(g, depth - 1);
    fz_put(g, " end)");
    return;
  default: fz_put(g, "sieve.global_frames{%u}", fz_pick(g, 3)); return;
  }
}

/* The script for the bytes p[0..n); overrides (at most 3) go to ov,
** NULL-terminated. Returns the script's length. */
static size_t fz_script(const uint8_t *p, size_t n, char *out, size_t cap, const char *ov[4], fz_gen *g) {
  memset(g, 0, sizeof *g);
  g->p = p;
  g->n = n;
  g->out = out;
  g->cap = cap;
  out[0] = 0;
  fz_put(g, "local param = sieve.params{n = %u, flag = %s, s = 'x'}\n", fz_pick(g, 4),
         fz_pick(g, 2) ? "true" : "false");
  int depth = 1 + (int)fz_pick(g, 6);
  static const int blocks[] = {128, 64, 256, 192, 32, 16, 48, 1024};
  int bq = blocks[fz_pick(g, 8) & (fz_pick(g, 4) ? 1 : 7)], bk = blocks[fz_pick(g, 8) & (fz_pick(g, 4) ? 1 : 7)];
  static const char *const layouts[] = {"sieve.layout.identity", "sieve.layout.transpose",
                                        "sieve.layout.tile{1, 2, 4}", "sieve.layout.tile{2, 2, 2}"};
  static const char *const sels[] = {"sieve.static", "sieve.search{recall = 0.9, steps = {0, 2}}",
                                     "sieve.profile{samples = 8, steps = {1}}",
                                     "sieve.search{recall = 0.5, topk = 2, steps = {1}, levels = {256, 128}}"};
  const char *sel = sels[fz_pick(g, 4) & (fz_pick(g, 3) ? 0 : 3)];
  if (fz_pick(g, 3)) {
    fz_put(g, "local m = ");
    fz_bool(g, depth);
    fz_put(g, "\nreturn sieve.pattern{name = 'fz', mask = m, layout = %s, block = {q = %d, k = %d}, "
              "selection = %s%s}\n",
           layouts[fz_pick(g, 4) & (fz_pick(g, 2) ? 0 : 3)], bq, bk, sel,
           fz_pick(g, 4) ? "" : ", geometry = {frames = 2, height = 4, width = 8, text = 3}");
  } else {
    fz_put(g, "local a, b = ");
    fz_bool(g, depth);
    fz_put(g, ", ");
    fz_bool(g, depth);
    fz_put(g, "\nreturn sieve.pattern{name = 'fz2', block = {q = %d, k = %d}, classes = {"
              "{name = 'a', mask = a}, {name = 'b', layout = %s, mask = b}}, heads = {'a', 'b', 'b'}}\n",
           bq, bk, layouts[fz_pick(g, 4)]);
  }
  static const char *const overs[] = {"n=2", "flag=no", "s=y", "n=abc", "bogus=1", "n=2147483648", "flag=on"};
  int k = 0;
  for (int i = 0; i < 3 && fz_pick(g, 3) == 0; i++) ov[k++] = overs[fz_pick(g, 7)];
  ov[k] = NULL;
  return g->len;
}

#endif
