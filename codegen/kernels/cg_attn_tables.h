/*
** The pattern a kernel's block tables are built from. A kernel that reads
** tables at more query rows than the pattern's blocks (cg_attn_table_q),
** or at blocks of its tile (cg_attn_table_blocks), needs tables, bitmasks
** and a cache key of one block size: a copy of the pattern at those rows,
** or a view with those blocks. Plans build their tables from it, and
** `sieve show` reports from it what the kernel visits.
*/
#ifndef CG_ATTN_TABLES_H
#define CG_ATTN_TABLES_H

#include "cg_attn.h"

/*
** Where the kernel of s merges the pattern's query blocks into its rows:
** *rows is a copy of s->pattern with that query block (free with
** cg_pattern_free) and s->pattern points at it, so that what is derived
** from the spec afterwards (bitmask classes, checks, the kernel) sees one
** block size. Elsewhere *rows is NULL and s is unchanged.
*/
sieve_status cg_attn_merge_rows(cg_attn_spec *s, cg_pattern **rows, cg_err *e);

/*
** The view of s->pattern with the table blocks of s where they are not its
** own (blocks left to the kernel's tile), in *view (free with
** cg_pattern_view_free); NULL where the pattern's own blocks serve.
*/
sieve_status cg_attn_tables_view(const cg_attn_spec *s, cg_pattern **view, cg_err *e);

#endif
