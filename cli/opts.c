/*
** Option parsing for every command, from the cli_opt tables. Accepted
** forms: `--name VALUE`, `--name=VALUE`, `-x VALUE`, `-xVALUE`, and `--`
** to end options. Anything else starting with '-' is an unknown option.
*/
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt shape_opts[] = {
  {CLI_OPT_SHAPE, "--shape", 0, "NAME", "a model's shape, from the presets below"},
  {CLI_OPT_FRAMES, "--frames", 0, "T", "latent frames (T), instead of the preset's"},
  {CLI_OPT_HEIGHT, "--height", 0, "Y", "token rows per frame (Y), instead of the preset's"},
  {CLI_OPT_WIDTH, "--width", 0, "X", "token columns per frame (X), instead of the preset's"},
  {CLI_OPT_TEXT, "--text", 0, "N", "text tokens (default: preset's, else 0)"},
  {CLI_OPT_TEXT_AFTER, "--text-after", 0, NULL,
   "text tokens follow the video tokens (default: before)"},
  {CLI_OPT_HEADS, "--heads", 0, "H", "attention heads (default: preset's, else 1)"},
  {CLI_OPT_HEAD_DIM, "--head-dim", 0, "D", "head dimension (default: preset's, else 128)"},
  {0},
};

static const cli_opt pattern_opts[] = {
  {CLI_OPT_PARAM, "-p", 'p', "KEY=VALUE", "set a parameter of the script (repeatable; "
                                          "default: the script's values)"},
  {0},
};

static const cli_opt step_opts[] = {
  {CLI_OPT_STEP, "--step", 0, "S", "denoising step the tables are built for (default 0)"},
  {CLI_OPT_LAYER, "--layer", 0, "L", "transformer layer the tables are built for (default 0)"},
  {0},
};

static const cli_opt help_opt[] = {
  {CLI_OPT_HELP, "--help", 'h', NULL, "show this help and exit"},
  {0},
};

void cli_common_init(cli_common *com) {
  memset(com, 0, sizeof *com);
  com->frames = com->height = com->width = com->text = -1;
  com->heads = com->head_dim = -1;
  com->step = com->layer = 0;
}

/* ------------------------------------------------------------ lookup */

static const cli_opt *find_in(const cli_opt *t, const char *name, size_t n, char sh) {
  for (; t && t->id; t++) {
    if (sh && t->short_name == sh) return t;
    if (!sh && t->name[1] == '-' && strlen(t->name) == n && !strncmp(t->name, name, n)) return t;
  }
  return NULL;
}

static const cli_opt *find_opt(const cli_cmd *cmd, const char *name, size_t n, char sh) {
  const cli_opt *o = find_in(cmd->opts, name, n, sh);
  if (!o && (cmd->groups & CLI_G_SHAPE)) o = find_in(shape_opts, name, n, sh);
  if (!o && (cmd->groups & CLI_G_PATTERN)) o = find_in(pattern_opts, name, n, sh);
  if (!o && (cmd->groups & CLI_G_STEP)) o = find_in(step_opts, name, n, sh);
  if (!o) o = find_in(help_opt, name, n, sh);
  return o;
}

/* ------------------------------------------------------------ values */

static int common_opt(cli_common *c, const cli_opt *o, const char *v) {
  switch (o->id) {
  case CLI_OPT_SHAPE: c->shape_name = v; return CLI_OK;
  case CLI_OPT_FRAMES: return cli_int(o->name, v, 1, INT_MAX, &c->frames);
  case CLI_OPT_HEIGHT: return cli_int(o->name, v, 1, INT_MAX, &c->height);
  case CLI_OPT_WIDTH: return cli_int(o->name, v, 1, INT_MAX, &c->width);
  case CLI_OPT_TEXT: return cli_int(o->name, v, 0, INT_MAX, &c->text);
  case CLI_OPT_TEXT_AFTER: c->text_after = 1; return CLI_OK;
  case CLI_OPT_HEADS: return cli_int(o->name, v, 1, INT_MAX, &c->heads);
  case CLI_OPT_HEAD_DIM: return cli_int(o->name, v, 1, INT_MAX, &c->head_dim);
  case CLI_OPT_STEP: return cli_int(o->name, v, 0, INT_MAX, &c->step);
  case CLI_OPT_LAYER: return cli_int(o->name, v, 0, INT_MAX, &c->layer);
  case CLI_OPT_PARAM:
    if (!strchr(v, '=') || *v == '=')
      return cli_fail(CLI_USAGE, "-p expects KEY=VALUE, got '%s'", v);
    if (c->nparams == CLI_MAX_PARAMS)
      return cli_fail(CLI_USAGE, "too many -p options (at most %d)", CLI_MAX_PARAMS);
    c->params[c->nparams++] = v;
    return CLI_OK;
  }
  return cli_fail(CLI_USAGE, "internal: unhandled option %s", o->name);
}

/* ----------------------------------------------------------- parsing */

/* Finds the option an argument names, and its inline value ("--x=v", "-xv"). */
static int take_opt(const cli_cmd *cmd, const char *a, const cli_opt **o, const char **inl) {
  *inl = NULL;
  if (a[1] == '-') {
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    *o = find_opt(cmd, a, n, 0);
    if (eq) *inl = eq + 1;
  } else {
    *o = find_opt(cmd, NULL, 0, a[1]);
    if (a[2]) *inl = a + 2;
  }
  if (!*o) return cli_fail(CLI_USAGE, "unknown option '%s' for '%s' (see sieve %s --help)", a,
                           cmd->name, cmd->name);
  if (!(*o)->arg && *inl)
    return cli_fail(CLI_USAGE, "%s takes no value", (*o)->name);
  return CLI_OK;
}

static int add_pos(const cli_cmd *cmd, cli_common *com, const char *a) {
  if (com->npos == CLI_MAX_POS)
    return cli_fail(CLI_USAGE, "too many arguments for '%s'", cmd->name);
  com->pos[com->npos++] = a;
  return CLI_OK;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_common *com, cli_opt_fn fn,
              void *self) {
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || !a[1]) {
      if (add_pos(cmd, com, a)) return CLI_USAGE;
      continue;
    }
    if (!strcmp(a, "--")) {
      only_pos = 1;
      continue;
    }
    const cli_opt *o;
    const char *v;
    if (take_opt(cmd, a, &o, &v)) return CLI_USAGE;
    if (o->id == CLI_OPT_HELP) {
      cli_help(cmd);
      return CLI_HELP_SHOWN;
    }
    if (o->arg && !v) {
      if (i + 1 >= argc) return cli_fail(CLI_USAGE, "%s needs a value (%s)", o->name, o->arg);
      v = argv[++i];
    }
    int rc = o->id >= CLI_OPT_CMD ? fn(self, o->id, v) : common_opt(com, o, v);
    if (rc) return rc;
  }
  return CLI_OK;
}

/* -------------------------------------------------------------- help */

/* Prints text as " word word ..." from column col0 on, breaking lines at
** spaces so none passes `width`. */
static void wrap(const char *text, int col0, int width) {
  int col = col0;
  for (const char *w = text; *w;) {
    int n = (int)strcspn(w, " ");
    if (col > col0 && col + 1 + n > width) {
      printf("\n%*s", col0, "");
      col = col0;
    }
    col += printf(" %.*s", n, w);
    w += n;
    while (*w == ' ') w++;
  }
  printf("\n");
}

static void help_table(const char *title, const cli_opt *t) {
  if (!t || !t->id) return;
  printf("\n%s:\n", title);
  for (; t->id; t++) {
    char lhs[64];
    if (t->short_name && t->name[1] == '-')
      snprintf(lhs, sizeof lhs, "-%c, %s%s%s", t->short_name, t->name, t->arg ? " " : "",
               t->arg ? t->arg : "");
    else
      snprintf(lhs, sizeof lhs, "%s%s%s", t->name, t->arg ? " " : "", t->arg ? t->arg : "");
    printf("  %-22s", lhs);
    wrap(t->help, 24, 79);
  }
}

static void help_shapes(void) {
  printf("\nshape presets (--shape NAME):\n");
  for (int i = 0; sieve_shape_preset_name(i); i++) {
    sieve_shape s;
    char d[160];
    if (sieve_shape_preset(sieve_shape_preset_name(i), &s) != SIEVE_OK) continue;
    cli_shape_describe(&s, d, sizeof d);
    printf("  %-16s %s; %lld tokens\n", sieve_shape_preset_name(i), d,
           (long long)sieve_shape_tokens(&s));
  }
}

static void help_patterns(void) {
  char names[2048], dir[4096];
  cli_pattern_names(names, sizeof names);
  printf("\nPATTERN is a .lua file, or the name of a shipped pattern, looked up in\n"
         "$SIEVE_PATTERNS, then <sieve's dir>/../patterns, then the source tree.\n");
  if (names[0]) printf("shipped (%s): %s\n", cli_patterns_dir(dir, sizeof dir), names);
}

void cli_help(const cli_cmd *cmd) {
  printf("usage: sieve %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->about);
  if (cmd->groups & CLI_G_PATTERN) help_patterns();
  help_table("options", cmd->opts);
  if (cmd->groups & CLI_G_SHAPE)
    help_table("shape (a preset, or --frames/--height/--width; explicit sizes win)", shape_opts);
  if (cmd->groups & CLI_G_PATTERN) help_table("pattern", pattern_opts);
  if (cmd->groups & CLI_G_STEP) help_table("denoising step", step_opts);
  help_table("general", help_opt);
  if (cmd->groups & CLI_G_SHAPE) help_shapes();
  if (cmd->examples) printf("\nexamples:\n%s", cmd->examples);
}

int cli_pattern_command(const cli_cmd *cmd, int argc, char **argv, cli_common *com,
                        cli_opt_fn fn, void *self, int (*body)(sieve_ctx *ctx, void *self)) {
  cli_common_init(com);
  int rc = cli_parse(cmd, argc, argv, com, fn, self);
  if (rc == CLI_HELP_SHOWN) return CLI_OK;
  if (rc) return rc;
  if (com->npos == 0) return cli_fail(CLI_USAGE, "missing PATTERN (see sieve %s --help)", cmd->name);
  if (com->npos > 1) return cli_fail(CLI_USAGE, "unexpected argument '%s'", com->pos[1]);
  sieve_ctx *ctx;
  if (sieve_open(&ctx) != SIEVE_OK) return cli_fail(CLI_FAIL, "out of memory");
  rc = body(ctx, self);
  sieve_close(ctx);
  return rc;
}
