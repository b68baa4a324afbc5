/*
** Kernel configs on the command line: "bm=128,bn=64,warps=4,stages=2".
** Whether a config suits a kernel is the generator's call (cg_attn_check);
** here only the syntax and positive values are checked.
*/
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int *field(sieve_config *c, const char *key, size_t n) {
  static const struct { const char *name; size_t off; } keys[] = {
    {"bm", offsetof(sieve_config, block_m)},     {"block_m", offsetof(sieve_config, block_m)},
    {"bn", offsetof(sieve_config, block_n)},     {"block_n", offsetof(sieve_config, block_n)},
    {"warps", offsetof(sieve_config, warps)},    {"stages", offsetof(sieve_config, stages)},
    {"sched", offsetof(sieve_config, sched)},
  };
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (strlen(keys[i].name) == n && !strncmp(keys[i].name, key, n))
      return (int *)((char *)c + keys[i].off);
  return NULL;
}

int cli_config_given(const sieve_config *u) {
  return u->block_m || u->block_n || u->warps || u->stages || u->sched;
}

sieve_config cli_config_complete(const sieve_config *u, const sieve_config *def) {
  sieve_config c = *def;
  if (u->block_m) c.block_m = u->block_m;
  if (u->block_n) c.block_n = u->block_n;
  if (u->warps) c.warps = u->warps;
  if (u->stages) c.stages = u->stages;
  if (u->sched) c.sched = u->sched;
  return c;
}

int cli_config(const char *opt, const char *spec, sieve_config *cfg) {
  char item[64], what[96];
  for (const char *s = spec; *s;) {
    size_t n = strcspn(s, ",");
    snprintf(item, sizeof item, "%.*s", (int)n, s);
    char *eq = strchr(item, '=');
    int *f = eq ? field(cfg, item, (size_t)(eq - item)) : NULL;
    if (!eq) return cli_fail(CLI_USAGE, "%s: expected KEY=VALUE, got '%s'", opt, item);
    if (!f)
      return cli_fail(CLI_USAGE, "%s: unknown key '%.*s' (keys: bm, bn, warps, stages, sched)", opt,
                      (int)(eq - item), item);
    snprintf(what, sizeof what, "%s %.*s", opt, (int)(eq - item), item);
    if (cli_int(what, eq + 1, f == &cfg->sched ? 0 : 1, INT_MAX, f)) return CLI_USAGE;
    s += n + (s[n] == ',');
  }
  return CLI_OK;
}
