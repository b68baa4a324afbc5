/*
** Mask-search files (rt_strategy.h): the sums of a search, each head's
** choice, and the file's text both ways.
*/
#include "rt_strategy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct entry {
  int step, layer, adds;
  double *err;  /* [heads][nc] sums; NULL for a loaded entry */
  int *cls;     /* [heads] */
} entry;

struct rt_strategy {
  char *pattern;
  sieve_shape shape;  /* resolved */
  int nc, heads, calls;
  char **names;       /* [nc] */
  entry *ent;
  int n, cap;
};

static char *sdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  return d ? memcpy(d, s, n) : NULL;
}

void rt_strategy_free(rt_strategy *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) {
    free(s->ent[i].err);
    free(s->ent[i].cls);
  }
  for (int c = 0; s->names && c < s->nc; c++) free(s->names[c]);
  free(s->names);
  free(s->ent);
  free(s->pattern);
  free(s);
}

sieve_status rt_strategy_new(const cg_pattern *p, const sieve_shape *shape, rt_strategy **out, cg_err *e) {
  *out = NULL;
  rt_strategy *s = calloc(1, sizeof *s);
  if (!s || !(s->pattern = sdup(p->name)) || !(s->names = calloc((size_t)p->nclasses, sizeof(char *)))) {
    rt_strategy_free(s);
    return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  }
  cg_shape_for(p, shape, &s->shape);
  s->nc = p->nclasses;
  s->heads = s->shape.heads;
  for (int c = 0; c < s->nc; c++) {
    const char *nm = p->classes[c].name;
    if (!nm || !*nm || strpbrk(nm, " \t\r\n#")) {
      rt_strategy_free(s);
      return cg_fail(e, SIEVE_ERR_ARG, "mask search: class %d's name '%s' is empty or holds a blank or '#'", c,
                     nm ? nm : "");
    }
    if (!(s->names[c] = sdup(nm))) {
      rt_strategy_free(s);
      return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    }
  }
  *out = s;
  return SIEVE_OK;
}

static entry *find(const rt_strategy *s, int step, int layer) {
  for (int i = 0; i < s->n; i++)
    if (s->ent[i].step == step && s->ent[i].layer == layer) return &s->ent[i];
  return NULL;
}

static entry *append(rt_strategy *s, int step, int layer, int sums) {
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    entry *ne = realloc(s->ent, sizeof *ne * (size_t)cap);
    if (!ne) return NULL;
    s->ent = ne;
    s->cap = cap;
  }
  entry *x = &s->ent[s->n];
  *x = (entry){step, layer, 0, NULL, calloc((size_t)s->heads, sizeof(int))};
  if (sums) x->err = calloc((size_t)s->heads * (size_t)s->nc, sizeof(double));
  if (!x->cls || (sums && !x->err)) {
    free(x->cls);
    free(x->err);
    return NULL;
  }
  s->n++;
  return x;
}

sieve_status rt_strategy_add(rt_strategy *s, int step, int layer, const double *err, cg_err *e) {
  entry *x = find(s, step, layer);
  if (x && !x->err) return cg_fail(e, SIEVE_ERR_ARG, "mask search: step %d layer %d was loaded, not searched", step, layer);
  if (!x && !(x = append(s, step, layer, 1))) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  for (int h = 0; h < s->heads; h++) {
    double *sum = x->err + (size_t)h * s->nc;
    int best = 0;
    for (int c = 0; c < s->nc; c++) {
      sum[c] += err[(size_t)h * s->nc + c];
      if (sum[c] < sum[best]) best = c;
    }
    x->cls[h] = best;
  }
  if (++x->adds > s->calls) s->calls = x->adds;  /* calibration calls: the most any entry had */
  return SIEVE_OK;
}

const int *rt_strategy_at(const rt_strategy *s, int step, int layer) {
  entry *x = find(s, step, layer);
  return x ? x->cls : NULL;
}

int rt_strategy_count(const rt_strategy *s) { return s->n; }

/* ------------------------------------------------------------- text */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int bad;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  if (b->bad) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->bad = 1;
      return;
    }
    if (b->p && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = (b->cap ? 2 * b->cap : 4096) + (size_t)k;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->bad = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
}

static void shape_text(const sieve_shape *s, char *out, size_t n) {
  snprintf(out, n, "T%d Y%d X%d text%d after%d heads%d", s->frames, s->height, s->width, s->text, s->text_after,
           s->heads);
}

char *rt_strategy_format(const rt_strategy *s) {
  sbuf b = {0};
  char sh[160];
  shape_text(&s->shape, sh, sizeof sh);
  put(&b, "# sieve mask search: each head's class at each sparse (step, layer), the class of least\n"
          "# summed squared error against full attention on sampled query rows\n");
  put(&b, "%s\npattern %s\nshape %s\nclasses", RT_STRATEGY_MAGIC, s->pattern, sh);
  for (int c = 0; c < s->nc; c++) put(&b, " %s", s->names[c]);
  put(&b, "\ncalls %d\n", s->calls);
  for (int i = 0; i < s->n; i++) {
    put(&b, "at %d %d", s->ent[i].step, s->ent[i].layer);
    for (int h = 0; h < s->heads; h++) put(&b, " %s", s->names[s->ent[i].cls[h]]);
    put(&b, "\n");
  }
  if (b.bad) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

static sieve_status write_text(const char *text, const char *path, cg_err *e) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return cg_fail(e, SIEVE_ERR_ARG, "mask search: path too long");
  FILE *f = fopen(tmp, "w");
  size_t len = strlen(text);
  int ok = f && fwrite(text, 1, len, f) == len;
  if (f && fclose(f)) ok = 0;
  if (!ok || rename(tmp, path)) {
    int err = errno;
    remove(tmp);
    return cg_fail(e, SIEVE_ERR_IO, "mask search: cannot write %s: %s", path, strerror(err));
  }
  return SIEVE_OK;
}

static sieve_status load_for(const char *path, const rt_strategy *like, rt_strategy **out, cg_err *e);
static sieve_status load_text(const char *path, char **out, cg_err *e);

sieve_status rt_strategy_save(const rt_strategy *s, const char *path, cg_err *e) {
  rt_strategy *old = NULL;
  sieve_status st = SIEVE_OK;
  if (access(path, F_OK) == 0 && (st = load_for(path, s, &old, e))) return st;
  /* The file's other entries stay (layers searched by other plans); this
  ** search's replace the same (step, layer)'s. */
  rt_strategy m = *s;
  entry *all = NULL;
  if (old) {
    all = malloc(sizeof *all * (size_t)(old->n + s->n));
    if (!all) {
      rt_strategy_free(old);
      return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    for (int i = 0; i < old->n; i++)
      if (!find(s, old->ent[i].step, old->ent[i].layer)) all[n++] = old->ent[i];
    for (int i = 0; i < s->n; i++) all[n++] = s->ent[i];
    m.ent = all;
    m.n = n;
    if (old->calls > m.calls) m.calls = old->calls;
  }
  char *text = rt_strategy_format(&m);
  st = text ? write_text(text, path, e) : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  free(text);
  free(all);
  rt_strategy_free(old);
  return st;
}

/* ------------------------------------------------------------- parse */

#define MAXTOK 4096

/* Splits line (modified) at blanks; returns the word count, -1 past MAXTOK. */
static int words(char *line, char **w) {
  int n = 0;
  for (char *t = strtok(line, " \t\r"); t; t = strtok(NULL, " \t\r")) {
    if (n == MAXTOK) return -1;
    w[n++] = t;
  }
  return n;
}

static int to_int(const char *t, int *v) {
  char *end;
  errno = 0;
  long x = strtol(t, &end, 10);
  if (errno || end == t || *end || x < -2147483647L || x > 2147483647L) return 0;
  *v = (int)x;
  return 1;
}

/* Reads text's entries into s, an empty strategy whose header the text's must equal. */
static sieve_status parse_into(const char *text, const char *what, rt_strategy *s, cg_err *e) {
  sieve_status st = SIEVE_OK;
  char **w = malloc(sizeof(char *) * MAXTOK), *copy = sdup(text), want[160];
  if (!w || !copy) st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  shape_text(&s->shape, want, sizeof want);
  int line = 0, stage = 0;  /* 0 magic, 1 pattern, 2 shape, 3 classes, 4 calls, 5 entries */
  for (char *cur = copy, *next; !st && cur; cur = next) {
    next = strchr(cur, '\n');
    if (next) *next++ = 0;
    line++;
    if (stage == 0 && !strncmp(cur, RT_STRATEGY_MAGIC, strlen(RT_STRATEGY_MAGIC))) {
      stage = 1;
      continue;
    }
    char *hash = strchr(cur, '#');
    if (hash) *hash = 0;
    int n = words(cur, w);
    if (n == 0) continue;
    if (n < 0) {
      st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: too many words", what, line);
    } else if (stage == 0) {
      st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: not a mask-search file (no '%s' line)", what, line,
                   RT_STRATEGY_MAGIC);
    } else if (stage == 1) {
      if (n != 2 || strcmp(w[0], "pattern"))
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: expected 'pattern NAME'", what, line);
      else if (strcmp(w[1], s->pattern))
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s is for pattern %s, not %s", what, w[1], s->pattern);
      stage++;
    } else if (stage == 2) {
      char got[160] = "";
      for (int i = 1; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i > 1 ? " " : "", w[i]);
      if (strcmp(w[0], "shape"))
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: expected 'shape ...'", what, line);
      else if (strcmp(got, want))
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s is for shape %s, the plan's is %s", what, got, want);
      stage++;
    } else if (stage == 3) {
      int same = !strcmp(w[0], "classes") && n - 1 == s->nc;
      for (int c = 0; same && c < s->nc; c++) same = !strcmp(w[c + 1], s->names[c]);
      if (strcmp(w[0], "classes"))
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: expected 'classes ...'", what, line);
      else if (!same)
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s was searched over other classes (candidates) than the pattern's",
                     what);
      stage++;
    } else if (stage == 4) {
      if (n != 2 || strcmp(w[0], "calls") || !to_int(w[1], &s->calls) || s->calls < 0)
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: expected 'calls N'", what, line);
      stage++;
    } else {
      int step, layer;
      if (strcmp(w[0], "at") || n != 3 + s->heads || !to_int(w[1], &step) || !to_int(w[2], &layer) || step < 0 ||
          layer < 0) {
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: expected 'at STEP LAYER' and %d class names", what,
                     line, s->heads);
        break;
      }
      if (find(s, step, layer)) {
        st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: step %d layer %d again", what, line, step, layer);
        break;
      }
      entry *x = append(s, step, layer, 0);
      if (!x) {
        st = cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
        break;
      }
      for (int h = 0; !st && h < s->heads; h++) {
        int c = 0;
        while (c < s->nc && strcmp(w[3 + h], s->names[c])) c++;
        if (c == s->nc)
          st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s, line %d: head %d's class '%s' is not one of the pattern's",
                       what, line, h, w[3 + h]);
        x->cls[h] = c;
      }
    }
  }
  if (!st && stage < 5)
    st = cg_fail(e, SIEVE_ERR_ARG, "mask search %s: the file ends before its header does (damaged or empty)", what);
  free(w);
  free(copy);
  return st;
}

sieve_status rt_strategy_parse(const char *text, const char *what, const cg_pattern *p, const sieve_shape *shape,
                               rt_strategy **out, cg_err *e) {
  *out = NULL;
  rt_strategy *s;
  sieve_status st = rt_strategy_new(p, shape, &s, e);
  if (!st) st = parse_into(text, what, s, e);
  if (st) {
    rt_strategy_free(s);
    return st;
  }
  *out = s;
  return SIEVE_OK;
}

/* The file at path, which must have like's header. */
static sieve_status load_for(const char *path, const rt_strategy *like, rt_strategy **out, cg_err *e) {
  *out = NULL;
  rt_strategy *s = calloc(1, sizeof *s);
  int ok = s && (s->pattern = sdup(like->pattern)) && (s->names = calloc((size_t)like->nc, sizeof(char *)));
  if (s) {
    s->shape = like->shape;
    s->heads = like->heads;
    s->nc = ok ? like->nc : 0;
  }
  for (int c = 0; ok && c < like->nc; c++) ok = (s->names[c] = sdup(like->names[c])) != NULL;
  char *text = NULL;
  sieve_status st = ok ? load_text(path, &text, e) : cg_fail(e, SIEVE_ERR_NOMEM, "out of memory");
  if (!st) st = parse_into(text, path, s, e);
  free(text);
  if (st) {
    rt_strategy_free(s);
    return st;
  }
  *out = s;
  return SIEVE_OK;
}

static sieve_status load_text(const char *path, char **out, cg_err *e) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return cg_fail(e, SIEVE_ERR_IO, "mask search file %s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 > cap) {
      cap = cap ? 2 * cap : 65536;
      char *nb = cap <= ((size_t)64 << 20) ? realloc(buf, cap + 1) : NULL;
      if (!nb) {
        free(buf);
        fclose(f);
        return cg_fail(e, SIEVE_ERR_ARG, "mask search file %s: too large (64 MiB at most) or no memory", path);
      }
      buf = nb;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return cg_fail(e, SIEVE_ERR_IO, "mask search file %s: read error", path);
  }
  buf[n] = 0;
  if (memchr(buf, 0, n)) {
    free(buf);
    return cg_fail(e, SIEVE_ERR_ARG, "mask search file %s: binary data (damaged)", path);
  }
  *out = buf;
  return SIEVE_OK;
}

sieve_status rt_strategy_load(const char *path, const cg_pattern *p, const sieve_shape *shape, rt_strategy **out,
                              cg_err *e) {
  *out = NULL;
  char *text;
  sieve_status st = load_text(path, &text, e);
  if (st) return st;
  st = rt_strategy_parse(text, path, p, shape, out, e);
  free(text);
  return st;
}
