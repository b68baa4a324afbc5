/*
** Arenas: memory for one pattern or one plan comes from a pool freed all
** at once, so IR nodes are never freed one by one.
*/
#ifndef CG_ARENA_H
#define CG_ARENA_H

#include <stddef.h>

typedef struct cg_arena cg_arena;

cg_arena *cg_arena_new(void);
void cg_arena_free(cg_arena *a);
/* Zeroed, 16-byte aligned; NULL only when the system is out of memory. */
void *cg_alloc(cg_arena *a, size_t n);
char *cg_strdup(cg_arena *a, const char *s);
/* p, from malloc, is freed with the arena: a large array built elsewhere
** becomes the arena's without a copy (and without the fresh pages a copy
** would touch). 0, or -1 out of memory (p is then still the caller's). */
int cg_arena_own(cg_arena *a, void *p);

#endif
