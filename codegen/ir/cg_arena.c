#include "cg_arena.h"

#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} chunk;

typedef struct owned {
  struct owned *next;
  void *p;
} owned;

struct cg_arena {
  chunk *head;
  owned *own;
};

cg_arena *cg_arena_new(void) { return calloc(1, sizeof(cg_arena)); }

void cg_arena_free(cg_arena *a) {
  if (!a) return;
  for (owned *o = a->own; o; o = o->next) free(o->p);
  for (chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(a);
}

void *cg_alloc(cg_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  chunk *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    c = malloc(sizeof(chunk) + cap);
    if (!c) return NULL;
    c->next = a->head;
    c->used = 0;
    c->cap = cap;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

char *cg_strdup(cg_arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cg_alloc(a, n);
  if (d) memcpy(d, s, n);
  return d;
}

int cg_arena_own(cg_arena *a, void *p) {
  owned *o = cg_alloc(a, sizeof *o);
  if (!o) return -1;
  *o = (owned){a->own, p};
  a->own = o;
  return 0;
}
