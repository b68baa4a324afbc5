/*
** The tuning database file (see rt_tunedb.h).
*/
#define _POSIX_C_SOURCE 200809L  /* mkstemp, fsync, strtok_r */
#define _DEFAULT_SOURCE          /* flock */
#include "rt_tunedb.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define HEADER "# sieve tuning database: pattern-hash shape dtype arch gpu -> config, ms"
#define KEY_WORDS 5

void rt_tunedb_path(const char *dir, char *out, size_t n) {
  snprintf(out, n, "%s/" RT_TUNEDB_FILE, dir);
}

void rt_tunedb_key(const cg_pattern *p, const sieve_shape *shape, cg_dtype dt, cg_arch arch,
                   const char *gpu, char *out, size_t n) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  char name[256];
  snprintf(name, sizeof name, "%s", gpu && *gpu ? gpu : "unknown-gpu");
  for (char *c = name; *c; c++)
    if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') *c = '_';
  snprintf(out, n, "%016" PRIx64 " H%d.D%d.T%d.Y%d.X%d.text%d%s %s %s %s", p->ir_hash, s.heads,
           s.head_dim, s.frames, s.height, s.width, s.text, s.text && s.text_after ? "after" : "",
           dt == CG_FP16 ? "fp16" : "bf16", cg_arch_name(arch), name);
}

/* ---------------------------------------------------------------- lines */

/* The config's fields by their names in the file; bit i of `have` is field i. */
static int *cfg_field(cg_attn_config *c, const char *k, int *bit) {
  static const char *const names[5] = {"bm", "bn", "warps", "stages", "sched"};
  int *f[5] = {&c->block_m, &c->block_n, &c->warps, &c->stages, &c->sched};
  for (int i = 0; i < 5; i++)
    if (!strcmp(k, names[i])) {
      *bit = i;
      return f[i];
    }
  return NULL;
}

static int set_field(rt_tunedb_entry *ent, const char *k, const char *v, unsigned *have) {
  char *end;
  int bit;
  int *f = cfg_field(&ent->cfg, k, &bit);
  if (f) {
    long x = strtol(v, &end, 10);
    if (*end || end == v) return -1;
    *f = (int)x;
    *have |= 1u << bit;
  } else if (!strcmp(k, "ms")) {
    ent->ms = strtod(v, &end);
    if (*end || end == v) return -1;
  } else if (!strcmp(k, "time")) {
    ent->time = strtoll(v, &end, 10);
  } else if (!strcmp(k, "pattern")) {
    snprintf(ent->pattern, sizeof ent->pattern, "%s", v);
  }
  return 0;  /* fields a later sieve adds are ignored */
}

int rt_tunedb_parse_line(const char *line, char *key, size_t keylen, rt_tunedb_entry *out) {
  char buf[1024], *save = NULL;
  line += strspn(line, " \t");
  if (!*line || *line == '#' || *line == '\n' || *line == '\r') return 0;
  snprintf(buf, sizeof buf, "%.*s", (int)strcspn(line, "\r\n"), line);
  memset(out, 0, sizeof *out);
  size_t used = 0;
  int words = 0;
  unsigned have = 0;
  key[0] = 0;
  for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
    if (words < KEY_WORDS) {
      int k = snprintf(key + used, keylen - used, "%s%s", words ? " " : "", w);
      if (k < 0 || (size_t)k >= keylen - used) return -1;
      used += (size_t)k;
      words++;
      continue;
    }
    char *eq = strchr(w, '=');
    if (!eq) return -1;
    *eq = 0;
    if (set_field(out, w, eq + 1, &have)) return -1;
  }
  return words == KEY_WORDS && (have & 15u) == 15u ? 1 : -1;  /* sched may be absent: 0 */
}

int rt_tunedb_format_line(const char *key, const rt_tunedb_entry *ent, char *out, size_t n) {
  const cg_attn_config *c = &ent->cfg;
  char sched[16] = "";
  if (c->sched) snprintf(sched, sizeof sched, " sched=%d", c->sched);
  return snprintf(out, n, "%s bm=%d bn=%d warps=%d stages=%d%s ms=%.4f pattern=%s time=%" PRId64,
                  key, c->block_m, c->block_n, c->warps, c->stages, sched, ent->ms,
                  ent->pattern[0] ? ent->pattern : "-", ent->time);
}

/* ---------------------------------------------------------------- files */

/* The whole file, NUL-terminated; *text NULL when it does not exist. */
static sieve_status slurp(const char *path, char **text, cg_err *e) {
  *text = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return SIEVE_OK;
    return cg_fail(e, SIEVE_ERR_IO, "cannot read %s: %s", path, strerror(errno));
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (size_t got = 1; buf && got;) {
    if (cap - n < 2) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf) return cg_fail(e, SIEVE_ERR_NOMEM, "no memory to read %s", path);
  if (bad) {
    free(buf);
    return cg_fail(e, SIEVE_ERR_IO, "cannot read %s", path);
  }
  buf[n] = 0;
  *text = buf;
  return SIEVE_OK;
}

/* Calls fn on each line (without its newline) until it returns nonzero. */
static void each_line(char *text, int (*fn)(char *line, void *ud), void *ud) {
  for (char *l = text; l && *l;) {
    char *nl = strchr(l, '\n');
    if (nl) *nl = 0;
    int stop = fn(l, ud);
    if (nl) *nl = '\n';
    if (stop) return;
    l = nl ? nl + 1 : NULL;
  }
}

typedef struct find_state {
  const char *key;
  rt_tunedb_entry *out;
  int found;
  int64_t count;
} find_state;

static int find_one(char *line, void *ud) {
  find_state *f = ud;
  char key[512];
  rt_tunedb_entry ent;
  if (rt_tunedb_parse_line(line, key, sizeof key, &ent) != 1) return 0;
  f->count++;
  if (f->key && !strcmp(key, f->key)) {
    *f->out = ent;  /* the last line of a key wins, as a merge would leave it */
    f->found = 1;
  }
  return 0;
}

/* Runs find_one over the file's lines; a missing file has none. */
static sieve_status scan(const char *path, find_state *f, cg_err *e) {
  char *text;
  sieve_status st = slurp(path, &text, e);
  if (st || !text) return st;
  each_line(text, find_one, f);
  free(text);
  return SIEVE_OK;
}

sieve_status rt_tunedb_get(const char *path, const char *key, rt_tunedb_entry *out, int *found,
                           cg_err *e) {
  find_state f = {key, out, 0, 0};
  sieve_status st = scan(path, &f, e);
  *found = f.found;
  return st;
}

sieve_status rt_tunedb_count(const char *path, int64_t *n, cg_err *e) {
  rt_tunedb_entry ent;
  find_state f = {NULL, &ent, 0, 0};
  sieve_status st = scan(path, &f, e);
  *n = f.count;
  return st;
}

/* ---------------------------------------------------------------- writing */

typedef struct merge_state {
  FILE *f;
  const char *key, *line;  /* the new entry's key and line */
  int replaced;
} merge_state;

/* Every old line survives except the header and the key being replaced;
** the new line takes the old one's place. Lines sieve cannot parse are kept
** as they are: someone wrote them. */
static int merge_one(char *line, void *ud) {
  merge_state *m = ud;
  char key[512];
  rt_tunedb_entry ent;
  if (!strncmp(line, HEADER, strlen(HEADER))) return 0;
  if (rt_tunedb_parse_line(line, key, sizeof key, &ent) == 1 && !strcmp(key, m->key)) {
    if (!m->replaced) fprintf(m->f, "%s\n", m->line);
    m->replaced = 1;
    return 0;
  }
  if (*line) fprintf(m->f, "%s\n", line);
  return 0;
}

static sieve_status write_merged(const char *path, const char *old, const char *key,
                                 const char *line, cg_err *e) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) return cg_fail(e, SIEVE_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(tmp);
    return cg_fail(e, SIEVE_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
  }
  merge_state m = {f, key, line, 0};
  fprintf(f, "%s\n", HEADER);
  if (old) {
    char *copy = strdup(old);
    if (copy) each_line(copy, merge_one, &m);
    free(copy);
    if (!copy) {
      fclose(f);
      unlink(tmp);
      return cg_fail(e, SIEVE_ERR_NOMEM, "no memory to merge %s", path);
    }
  }
  if (!m.replaced) fprintf(f, "%s\n", line);
  int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
  int err = errno;
  bad |= fclose(f) != 0;
  if (!bad && rename(tmp, path) == 0) return SIEVE_OK;
  if (!bad) err = errno;
  unlink(tmp);
  return cg_fail(e, SIEVE_ERR_IO, "cannot write %s: %s", path, strerror(err));
}

sieve_status rt_tunedb_put(const char *path, const char *key, const rt_tunedb_entry *ent,
                           cg_err *e) {
  char line[1024], lock[4300];
  if (rt_tunedb_format_line(key, ent, line, sizeof line) >= (int)sizeof line)
    return cg_fail(e, SIEVE_ERR_ARG, "tuning database line too long");
  /* Two sweeps finishing at once must not lose each other's entries: the
  ** read-merge-rename runs under an exclusive lock. */
  snprintf(lock, sizeof lock, "%s.lock", path);
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lfd < 0) return cg_fail(e, SIEVE_ERR_IO, "cannot open %s: %s", lock, strerror(errno));
  if (flock(lfd, LOCK_EX)) {
    int err = errno;
    close(lfd);
    return cg_fail(e, SIEVE_ERR_IO, "cannot lock %s: %s", lock, strerror(err));
  }
  char *old;
  sieve_status st = slurp(path, &old, e);
  if (!st) st = write_merged(path, old, key, line, e);
  free(old);
  close(lfd);  /* releases the lock */
  return st;
}

static int ours(const char *name) {
  size_t n = strlen(name);
  /* The lock file stays: another process may hold a lock on it. */
  return !strcmp(name, RT_TUNEDB_FILE) ||
         (!strncmp(name, "tune-", 5) && n > 13 && !strcmp(name + n - 8, ".journal"));
}

sieve_status rt_tunedb_clear(const char *dir, int64_t *removed, cg_err *e) {
  int64_t n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (removed) *removed = 0;
    if (errno == ENOENT) return SIEVE_OK;
    return cg_fail(e, SIEVE_ERR_IO, "cannot read %s: %s", dir, strerror(errno));
  }
  char path[4400];
  sieve_status st = SIEVE_OK;
  for (struct dirent *de; (de = readdir(d));) {
    if (!ours(de->d_name)) continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (unlink(path) == 0) n++;
    else if (errno != ENOENT && !st)
      st = cg_fail(e, SIEVE_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
  }
  closedir(d);
  if (removed) *removed = n;
  return st;
}

/* ---------------------------------------------------------------- plans */

int rt_tunedb_config(const char *dir, const rt_plan_spec *s, const rt_device *dev,
                     cg_attn_config *cfg) {
  char path[4200], key[512];
  rt_tunedb_entry ent;
  int found = 0;
  /* A mask true at the shape runs the dense kernel (rt_plan.c, fold), not
  ** the pattern's kernel that an entry would have tuned. */
  if (cg_attn_folds_dense(s->pattern, &s->shape)) return 0;
  rt_tunedb_path(dir, path, sizeof path);
  rt_tunedb_key(s->pattern, &s->shape, s->dtype, s->arch, dev->name, key, sizeof key);
  if (rt_tunedb_get(path, key, &ent, &found, NULL) || !found) return 0;
  /* An entry from an older sieve, or edited by hand, may no longer fit:
  ** the default config is better than a plan that fails. */
  cg_attn_spec sp = {s->pattern, s->shape, s->dtype, s->arch, ent.cfg, 0};
  cg_shape_for(s->pattern, &s->shape, &sp.shape);
  if (cg_attn_check(&sp, NULL)) return 0;
  if (dev->smem_optin > 0 && cg_attn_smem_bytes(&sp) > (size_t)dev->smem_optin) return 0;
  *cfg = ent.cfg;
  return 1;
}
