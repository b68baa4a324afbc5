#define _POSIX_C_SOURCE 200809L  /* mkstemp, fsync, futimens, getpwuid_r */
#include "rt_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt_sha256.h"

#define MAGIC "SIEVEKC\n"
#define FORMAT 1u
#define HDR 56                   /* magic, format, key len, payload len, sha */
#define MAX_KEY (1u << 16)
#define ENTRY_EXT ".bin"
#define TEMP_PREFIX ".tmp-"
#define TEMP_STALE_S 3600        /* no store takes this long: the writer died */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static uint32_t get32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static int read_all(int fd, void *buf, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static int write_all(int fd, const void *buf, size_t n) {
  for (size_t put = 0; put < n;) {
    ssize_t r = write(fd, (const char *)buf + put, n - put);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    put += (size_t)r;
  }
  return 0;
}

/* ------------------------------------------------------------- directory */

static sieve_status mkdir_p(const char *dir, cg_err *e) {
  char p[sizeof ((rt_cache *)0)->dir];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof p)
    return cg_fail(e, SIEVE_ERR_ARG, "cache directory path is empty or too long");
  memcpy(p, dir, n + 1);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s) continue;
    char c = *s;
    *s = 0;
    struct stat st;
    /* An existing directory is fine even where mkdir would be refused
    ** (read-only parents answer EROFS or EACCES, not EEXIST). */
    if (mkdir(p, 0700) != 0 && !(stat(p, &st) == 0 && S_ISDIR(st.st_mode)))
      return cg_fail(e, SIEVE_ERR_IO, "cannot create cache directory %s: %s", p,
                     strerror(errno));
    if (!(*s = c)) break;
  }
  return SIEVE_OK;
}

static sieve_status env_dir(char *out, size_t n, cg_err *e) {
  const char *s = getenv("SIEVE_CACHE_DIR");
  int w;
  if (s && *s) {
    w = snprintf(out, n, "%s", s);
  } else if ((s = getenv("XDG_CACHE_HOME")) && s[0] == '/') {
    /* The XDG spec says to ignore a relative XDG_CACHE_HOME. */
    w = snprintf(out, n, "%s/sieve", s);
  } else {
    const char *home = getenv("HOME");
    struct passwd pw, *pp = NULL;
    char buf[4096];
    if ((!home || !*home) && getpwuid_r(getuid(), &pw, buf, sizeof buf, &pp) == 0 && pp)
      home = pp->pw_dir;
    if (!home || !*home)
      return cg_fail(e, SIEVE_ERR_IO,
                     "no cache directory: set SIEVE_CACHE_DIR (no HOME, no XDG_CACHE_HOME)");
    w = snprintf(out, n, "%s/.cache/sieve", home);
  }
  if (w < 0 || (size_t)w >= n)
    return cg_fail(e, SIEVE_ERR_ARG, "cache directory path too long");
  return SIEVE_OK;
}

static sieve_status env_limit(uint64_t *limit, cg_err *e) {
  const char *s = getenv("SIEVE_CACHE_MAX_MB");
  *limit = RT_CACHE_DEFAULT_LIMIT;
  if (!s || !*s) return SIEVE_OK;
  char *end;
  errno = 0;
  unsigned long long mb = strtoull(s, &end, 10);
  if (errno || *end || s[0] < '0' || s[0] > '9')
    return cg_fail(e, SIEVE_ERR_ARG, "SIEVE_CACHE_MAX_MB=%s is not a size in MiB", s);
  /* The limit is reported in bytes as an int64 (sieve_cache_info). */
  if (mb > (uint64_t)(INT64_MAX >> 20))
    return cg_fail(e, SIEVE_ERR_ARG, "SIEVE_CACHE_MAX_MB=%s is too large (at most %lld)", s,
                   (long long)(INT64_MAX >> 20));
  *limit = (uint64_t)mb << 20;
  return SIEVE_OK;
}

sieve_status rt_cache_open(rt_cache *c, const char *dir, cg_err *e) {
  memset(c, 0, sizeof *c);
  sieve_status st;
  if (dir) {
    if (!*dir || strlen(dir) >= sizeof c->dir)
      return cg_fail(e, SIEVE_ERR_ARG, "cache directory path is empty or too long");
    strcpy(c->dir, dir);
  } else if ((st = env_dir(c->dir, sizeof c->dir, e))) {
    return st;
  }
  if ((st = env_limit(&c->limit, e))) return st;
  return mkdir_p(c->dir, e);
}

int rt_cache_path(const rt_cache *c, const char *key, char *out, size_t n) {
  char hex[RT_SHA256_HEX];
  if (rt_sha256_hex(key, strlen(key), hex)) {
    snprintf(out, n, "%s", c->dir);
    return -1;
  }
  snprintf(out, n, "%s/%s" ENTRY_EXT, c->dir, hex);
  return 0;
}

/* check()'s answer for a payload it could not hash: not damage. */
static const char NOHASH[] = "SHA-256 failed in libcrypto";

/* ------------------------------------------------------------ load/store */

/* What is wrong with an entry's bytes (in `why`), or NULL when it holds
** `key`; then the payload is b[*off .. *off + *len). */
static const char *check(const uint8_t *b, size_t size, const char *key,
                         size_t *off, size_t *len, char *why, size_t nwhy) {
  if (size < HDR) {
    snprintf(why, nwhy, "truncated: %zu bytes, less than a header", size);
    return why;
  }
  if (memcmp(b, MAGIC, 8)) return "not a sieve cache entry (bad magic)";
  if (get32(b + 8) != FORMAT) {
    snprintf(why, nwhy, "format %u, expected %u", get32(b + 8), FORMAT);
    return why;
  }
  uint64_t klen = get32(b + 12), plen = get64(b + 16);
  if (plen > SIZE_MAX - HDR - klen || HDR + klen + plen != size) {
    snprintf(why, nwhy, "%s: %zu bytes, header says %llu",
             HDR + klen + plen > size ? "truncated" : "trailing bytes", size,
             (unsigned long long)(HDR + klen + plen));
    return why;
  }
  if (klen != strlen(key) || memcmp(b + HDR, key, klen))
    return "holds another key (hash collision or damage)";
  uint8_t sum[RT_SHA256_BYTES];
  if (rt_sha256(b + HDR + klen, plen, sum)) return NOHASH;
  if (memcmp(sum, b + 24, sizeof sum)) return "payload checksum mismatch";
  *off = HDR + klen;
  *len = plen;
  return NULL;
}

/* Removes the damaged file only if it is still the one that was read: a
** writer may have renamed a good entry over it since. */
static sieve_status damaged(const char *path, const struct stat *seen,
                            const char *why, cg_err *e) {
  struct stat now;
  if (stat(path, &now) == 0 && now.st_ino == seen->st_ino && now.st_dev == seen->st_dev)
    unlink(path);
  return cg_fail(e, SIEVE_ERR_CACHE, "kernel cache entry %s is damaged (%s); removed",
                 path, why);
}

sieve_status rt_cache_load(const rt_cache *c, const char *key, void **data,
                           size_t *n, cg_err *e) {
  *data = NULL;
  *n = 0;
  char path[sizeof c->dir + 80];
  if (rt_cache_path(c, key, path, sizeof path)) return SIEVE_OK; /* unnamed: a miss */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? SIEVE_OK
                           : cg_fail(e, SIEVE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st)) {
    int err = errno;
    close(fd);
    return cg_fail(e, SIEVE_ERR_IO, "cannot stat %s: %s", path, strerror(err));
  }
  size_t size = (size_t)st.st_size;
  uint8_t *b = malloc(size ? size : 1);
  if (!b) {
    close(fd);
    return cg_fail(e, SIEVE_ERR_NOMEM, "no memory for the %zu-byte cache entry %s", size, path);
  }
  char whybuf[96];
  const char *why = NULL;
  size_t off = 0, len = 0;
  if (read_all(fd, b, size)) why = "short read";
  else why = check(b, size, key, &off, &len, whybuf, sizeof whybuf);
  if (!why) {
    /* The refreshed time is what least-recently-used eviction reads; when
    ** it cannot be set the entry only looks older than it is. */
    (void)futimens(fd, NULL);
  }
  close(fd);
  if (why == NOHASH) {
    free(b);
    return SIEVE_OK; /* unchecked: a miss, and the entry kept */
  }
  if (why) {
    free(b);
    return damaged(path, &st, why, e);
  }
  memmove(b, b + off, len);
  *data = b;
  *n = len;
  return SIEVE_OK;
}

sieve_status rt_cache_store(const rt_cache *c, const char *key, const void *data,
                            size_t n, cg_err *e) {
  size_t klen = strlen(key);
  if (klen > MAX_KEY) return cg_fail(e, SIEVE_ERR_ARG, "cache key of %zu bytes", klen);
  char path[sizeof c->dir + 80], tmp[sizeof c->dir + 80];
  uint8_t h[HDR];
  if (rt_cache_path(c, key, path, sizeof path) || rt_sha256(data, n, h + 24))
    return cg_fail(e, SIEVE_ERR_CACHE, "cache entry not stored in %s: SHA-256 failed in libcrypto", c->dir);
  snprintf(tmp, sizeof tmp, "%s/" TEMP_PREFIX "XXXXXX", c->dir);
  int fd = mkstemp(tmp);
  if (fd < 0) return cg_fail(e, SIEVE_ERR_IO, "cannot create a file in %s: %s", c->dir, strerror(errno));
  memcpy(h, MAGIC, 8);
  put32(h + 8, FORMAT);
  put32(h + 12, (uint32_t)klen);
  put64(h + 16, n);
  const char *what = NULL;
  if (write_all(fd, h, sizeof h) || write_all(fd, key, klen) || write_all(fd, data, n))
    what = "write";
  else if (fsync(fd))  /* the data must be durable before the name points at it */
    what = "fsync";
  int err = errno;
  if (close(fd) && !what) what = "close", err = errno;
  if (!what && rename(tmp, path)) what = "rename", err = errno;
  if (what) {
    unlink(tmp);
    return cg_fail(e, SIEVE_ERR_IO, "cannot store cache entry %s: %s: %s", path, what,
                   strerror(err));
  }
  return c->limit ? rt_cache_evict(c, c->limit, path, e) : SIEVE_OK;
}

/* -------------------------------------------------------------- scanning */

typedef struct file_info {
  char name[80];
  uint64_t bytes;
  struct timespec atime, mtime;
} file_info;

static int is_entry(const char *name) {
  size_t n = strlen(name);
  if (n != 64 + strlen(ENTRY_EXT) || strcmp(name + 64, ENTRY_EXT)) return 0;
  for (int i = 0; i < 64; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
  return 1;
}

/*
** Calls fn for each entry file in the directory and removes temp files left
** by dead writers on the way. Files that vanish during the scan (another
** process evicted them) are skipped.
*/
static sieve_status scan(const rt_cache *c, int (*fn)(const file_info *f, void *ud),
                         void *ud, cg_err *e) {
  DIR *d = opendir(c->dir);
  if (!d) return cg_fail(e, SIEVE_ERR_IO, "cannot read cache directory %s: %s", c->dir, strerror(errno));
  time_t now = time(NULL);
  struct dirent *de;
  char path[sizeof c->dir + 300];
  int stop = 0;
  errno = 0;
  while (!stop && (de = readdir(d))) {
    int entry = is_entry(de->d_name);
    int temp = !strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX));
    if (!entry && !temp) continue;
    snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
    struct stat st;
    if (lstat(path, &st) || !S_ISREG(st.st_mode)) continue;
    if (temp) {
      if (now - st.st_mtime > TEMP_STALE_S) unlink(path);
      continue;
    }
    file_info f = {.bytes = (uint64_t)st.st_size, .atime = st.st_atim, .mtime = st.st_mtim};
    memcpy(f.name, de->d_name, strlen(de->d_name) + 1);  /* is_entry: 68 chars */
    stop = fn(&f, ud);
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (!stop && err)
    return cg_fail(e, SIEVE_ERR_IO, "cannot read cache directory %s: %s", c->dir, strerror(err));
  return SIEVE_OK;
}

/* ------------------------------------------------------------- listing */

typedef struct list_state {
  const rt_cache *c;
  int (*fn)(const rt_cache_entry *ent, void *ud);
  void *ud;
} list_state;

/* Reads the key from an entry's header; NULL when the header is damaged. */
static char *read_key(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  uint8_t h[HDR];
  char *key = NULL;
  if (!read_all(fd, h, sizeof h) && !memcmp(h, MAGIC, 8) && get32(h + 8) == FORMAT &&
      get32(h + 12) <= MAX_KEY && (key = malloc(get32(h + 12) + 1))) {
    if (read_all(fd, key, get32(h + 12))) {
      free(key);
      key = NULL;
    } else {
      key[get32(h + 12)] = 0;
    }
  }
  close(fd);
  return key;
}

static int list_one(const file_info *f, void *ud) {
  list_state *s = ud;
  char path[sizeof s->c->dir + 100];
  snprintf(path, sizeof path, "%s/%s", s->c->dir, f->name);
  char *key = read_key(path);
  rt_cache_entry ent = {.path = path, .key = key, .bytes = f->bytes,
                        .atime = f->atime.tv_sec, .mtime = f->mtime.tv_sec};
  int stop = s->fn(&ent, s->ud);
  free(key);
  return stop;
}

sieve_status rt_cache_list(const rt_cache *c,
                           int (*fn)(const rt_cache_entry *ent, void *ud),
                           void *ud, cg_err *e) {
  list_state s = {c, fn, ud};
  return scan(c, list_one, &s, e);
}

static int add_totals(const file_info *f, void *ud) {
  rt_cache_totals *t = ud;
  t->entries++;
  t->bytes += f->bytes;
  return 0;
}

sieve_status rt_cache_totals_get(const rt_cache *c, rt_cache_totals *out, cg_err *e) {
  memset(out, 0, sizeof *out);
  return scan(c, add_totals, out, e);
}

typedef struct clear_state {
  const rt_cache *c;
  int64_t removed;
} clear_state;

static int clear_one(const file_info *f, void *ud) {
  clear_state *s = ud;
  char path[sizeof s->c->dir + 100];
  snprintf(path, sizeof path, "%s/%s", s->c->dir, f->name);
  if (unlink(path) == 0) s->removed++;
  return 0;
}

sieve_status rt_cache_clear(const rt_cache *c, int64_t *removed, cg_err *e) {
  clear_state s = {c, 0};
  sieve_status st = scan(c, clear_one, &s, e);
  if (removed) *removed = s.removed;
  return st;
}

/* -------------------------------------------------------------- eviction */

typedef struct file_list {
  file_info *v;
  size_t n, cap;
  uint64_t bytes;
  int nomem;
} file_list;

static int collect(const file_info *f, void *ud) {
  file_list *l = ud;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    file_info *v = realloc(l->v, cap * sizeof *v);
    if (!v) return l->nomem = 1;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *f;
  l->bytes += f->bytes;
  return 0;
}

static int older(const void *a, const void *b) {
  const struct timespec *x = &((const file_info *)a)->mtime, *y = &((const file_info *)b)->mtime;
  if (x->tv_sec != y->tv_sec) return x->tv_sec < y->tv_sec ? -1 : 1;
  return (x->tv_nsec > y->tv_nsec) - (x->tv_nsec < y->tv_nsec);
}

sieve_status rt_cache_evict(const rt_cache *c, uint64_t limit, const char *keep,
                            cg_err *e) {
  file_list l = {0};
  sieve_status st = scan(c, collect, &l, e);
  if (!st && l.nomem) st = cg_fail(e, SIEVE_ERR_NOMEM, "no memory to list the kernel cache");
  if (!st && l.bytes > limit) {
    qsort(l.v, l.n, sizeof *l.v, older);
    char path[sizeof c->dir + 100];
    for (size_t i = 0; i < l.n && l.bytes > limit; i++) {
      snprintf(path, sizeof path, "%s/%s", c->dir, l.v[i].name);
      if (keep && !strcmp(path, keep)) continue;
      /* Gone already means another process evicted it: counted all the same. */
      if (unlink(path) == 0 || errno == ENOENT) l.bytes -= l.v[i].bytes;
    }
  }
  free(l.v);
  return st;
}
