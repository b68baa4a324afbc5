/*
** The sweep journal (see rt_tunedb.h). A line per finished candidate:
**   bm=128 bn=64 warps=4 stages=2 state=ok ms=1.2345 min=1.2 max=1.3
**   tflops=410.2 err_o=3.1e-03 err_lse=2.0e-06 build_ms=812.0 note=text to the end
** after a first line naming the key. A line a crash cut short has no
** newline and is ignored.
*/
#define _POSIX_C_SOURCE 200809L  /* fsync, strtok_r */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_sha256.h"
#include "rt_tunedb.h"

#define MAGIC "# sieve tune journal 1 "

int rt_tune_journal_path(const char *dir, const char *key, char *out, size_t n) {
  char hex[RT_SHA256_HEX];
  out[0] = 0;
  if (rt_sha256_hex(key, strlen(key), hex)) return -1;
  snprintf(out, n, "%s/tune-%.16s.journal", dir, hex);
  return 0;
}

/* ------------------------------------------------------------- reading */

static int parse_field(rt_tune_cand *c, const char *k, const char *v) {
  char *end;
  int *ip = !strcmp(k, "bm") ? &c->cfg.block_m : !strcmp(k, "bn") ? &c->cfg.block_n
            : !strcmp(k, "warps") ? &c->cfg.warps : !strcmp(k, "stages") ? &c->cfg.stages
            : !strcmp(k, "sched") ? &c->cfg.sched : NULL;
  double *dp = !strcmp(k, "ms") ? &c->ms : !strcmp(k, "min") ? &c->min_ms
               : !strcmp(k, "max") ? &c->max_ms : !strcmp(k, "tflops") ? &c->tflops
               : !strcmp(k, "err_o") ? &c->err_o : !strcmp(k, "err_lse") ? &c->err_lse
               : !strcmp(k, "build_ms") ? &c->build_ms : NULL;
  if (ip) {
    *ip = (int)strtol(v, &end, 10);
    return *end || end == v ? -1 : 0;
  }
  if (dp) {
    *dp = strtod(v, &end);
    return *end || end == v ? -1 : 0;
  }
  if (!strcmp(k, "state")) return rt_tune_state_parse(v, &c->state);
  return 0;
}

/* One journal line into *c; -1 when it is not one. */
static int parse_line(char *line, rt_tune_cand *c) {
  memset(c, 0, sizeof *c);
  char *note = strstr(line, " note=");
  if (note) {
    snprintf(c->note, sizeof c->note, "%s", note + 6);
    *note = 0;
  }
  char *save = NULL;
  for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(w, '=');
    if (!eq) return -1;
    *eq = 0;
    if (parse_field(c, w, eq + 1)) return -1;
  }
  return c->cfg.block_m && c->cfg.block_n && c->cfg.warps && c->cfg.stages &&
                 c->state != RT_TUNE_PENDING ? 0 : -1;
}

static int same_cfg(const cg_attn_config *a, const cg_attn_config *b) {
  return a->block_m == b->block_m && a->block_n == b->block_n && a->warps == b->warps &&
         a->stages == b->stages && a->sched == b->sched;
}

/* Copies a journaled result into the pending candidate with its config. */
static int take(rt_tune_cand *c, int n, const rt_tune_cand *j) {
  for (int i = 0; i < n; i++) {
    if (!same_cfg(&c[i].cfg, &j->cfg) || c[i].state != RT_TUNE_PENDING) continue;
    int is_default = c[i].is_default;
    c[i] = *j;
    c[i].is_default = is_default;
    c[i].from_journal = 1;
    return 1;
  }
  return 0;
}

sieve_status rt_tune_journal_read(const char *path, const char *key, rt_tune_cand *c, int n,
                                  int *matched, cg_err *e) {
  *matched = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return SIEVE_OK;
    return cg_fail(e, SIEVE_ERR_IO, "cannot read %s: %s", path, strerror(errno));
  }
  char line[2048];
  int first = 1;
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    if (!len || line[len - 1] != '\n') break;  /* cut short: the writer died */
    line[len - 1] = 0;
    if (first) {
      first = 0;
      /* A journal for another key (a hash collision of its name) is not ours. */
      if (strncmp(line, MAGIC, strlen(MAGIC)) || strcmp(line + strlen(MAGIC), key)) break;
      continue;
    }
    rt_tune_cand j;
    if (!parse_line(line, &j)) *matched += take(c, n, &j);
  }
  fclose(f);
  return SIEVE_OK;
}

/* ------------------------------------------------------------- writing */

static int format_line(const rt_tune_cand *c, char *out, size_t n) {
  char note[sizeof c->note], sched[16] = "";
  if (c->cfg.sched) snprintf(sched, sizeof sched, " sched=%d", c->cfg.sched);
  snprintf(note, sizeof note, "%s", c->note);
  for (char *p = note; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  return snprintf(out, n,
                  "bm=%d bn=%d warps=%d stages=%d%s state=%s ms=%.6g min=%.6g max=%.6g tflops=%.6g "
                  "err_o=%.3e err_lse=%.3e build_ms=%.1f%s%s\n",
                  c->cfg.block_m, c->cfg.block_n, c->cfg.warps, c->cfg.stages, sched,
                  rt_tune_state_name(c->state), c->ms, c->min_ms, c->max_ms, c->tflops, c->err_o,
                  c->err_lse, c->build_ms, note[0] ? " note=" : "", note);
}

static sieve_status write_all(int fd, const char *buf, size_t n, const char *path, cg_err *e) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return cg_fail(e, SIEVE_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    buf += w;
    n -= (size_t)w;
  }
  return SIEVE_OK;
}

sieve_status rt_tune_journal_append(const char *path, const char *key, const rt_tune_cand *c,
                                    cg_err *e) {
  char line[2048], head[1024];
  format_line(c, line, sizeof line);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return cg_fail(e, SIEVE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  sieve_status s = fstat(fd, &st) ? cg_fail(e, SIEVE_ERR_IO, "cannot stat %s", path) : SIEVE_OK;
  if (!s && st.st_size == 0) {
    snprintf(head, sizeof head, MAGIC "%s\n", key);
    s = write_all(fd, head, strlen(head), path, e);
  }
  /* A line ends with its newline or is ignored, so a crash mid-write costs
  ** that candidate only; fsync makes the line outlive a power cut. */
  if (!s) s = write_all(fd, line, strlen(line), path, e);
  if (!s && fsync(fd)) s = cg_fail(e, SIEVE_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
  close(fd);
  return s;
}

sieve_status rt_tune_journal_remove(const char *path, cg_err *e) {
  if (unlink(path) == 0 || errno == ENOENT) return SIEVE_OK;
  return cg_fail(e, SIEVE_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
}
