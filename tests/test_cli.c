/*
** The `sieve` command, run as a user runs it: exit codes (0 ok, 1 runtime
** failure, 2 bad input), the one-line `sieve: <cause>` on stderr, help
** texts, and `sieve show` on every shipped pattern. The binary is $SIEVE_CLI
** (set by CMake), else `sieve` beside this test.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rt_cache.h"
#include "rt_tunedb.h"

static char cli[4096], tmpdir[256], patterns[4096];

typedef struct result {
  int code;          /* exit status; 128 + signal when it crashed */
  char out[65536];
  char err[8192];
} result;

static result res;
/* When set, the next runs write stdout here instead of a file (/dev/full). */
static const char *stdout_to;

/* ------------------------------------------------------------ running */

static void slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

/* Runs sieve with the NULL-terminated args; fills res. */
static int run_argv(const char *const *args) {
  char out[300], err[300];
  const char *argv[64] = {cli};
  int n = 1;
  for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
  argv[n] = NULL;
  snprintf(out, sizeof out, "%s/out", tmpdir);
  snprintf(err, sizeof err, "%s/err", tmpdir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(open(stdout_to ? stdout_to : out, O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
    dup2(open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
    execv(cli, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  res.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  slurp(out, res.out, sizeof res.out);
  slurp(err, res.err, sizeof res.err);
  return res.code;
}

#define RUN(...) run_argv((const char *const[]){__VA_ARGS__, NULL})

/* Bad input: code 2, and one line on stderr that starts "sieve: " and says `want`. */
static void expect_usage(const char *want) {
  if (res.code != 2 || strncmp(res.err, "sieve: ", 7) || !strstr(res.err, want))
    print_error("exit %d, stderr: %s(wanted code 2 and '%s')\n", res.code, res.err, want);
  assert_int_equal(res.code, 2);
  assert_memory_equal(res.err, "sieve: ", 7);
  assert_non_null(strstr(res.err, want));
  assert_ptr_equal(strchr(res.err, '\n'), res.err + strlen(res.err) - 1);
}

static void expect_ok(void) {
  if (res.code != 0) print_error("exit %d, stderr: %s\n", res.code, res.err);
  assert_int_equal(res.code, 0);
}

static const char *write_script(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* --------------------------------------------------------------- help */

static void help_lists_commands_and_shapes(void **st) {
  RUN("--help");
  expect_ok();
  assert_non_null(strstr(res.out, "show"));
  assert_non_null(strstr(res.out, "hunyuan-720p"));
  assert_non_null(strstr(res.out, "exit status"));
}

/* Every command listed by `sieve --help` has a help of its own. */
static void every_command_has_help(void **st) {
  RUN("--help");
  char *list = strstr(res.out, "commands:\n"), names[16][32];
  assert_non_null(list);
  int n = 0;
  for (char *l = strchr(list, '\n') + 1; !strncmp(l, "  ", 2) && n < 16;) {
    sscanf(l, " %31s", names[n++]);
    char *nl = strchr(l, '\n');
    if (!nl) break;
    l = nl + 1;
  }
  assert_true(n >= 1);
  for (int i = 0; i < n; i++) {
    RUN(names[i], "--help");
    expect_ok();
    assert_non_null(strstr(res.out, "usage: sieve"));
    assert_non_null(strstr(res.out, "examples:"));
    assert_non_null(strstr(res.out, "--help"));
  }
}

static void show_help_documents_options(void **st) {
  RUN("show", "--help");
  expect_ok();
  const char *want[] = {"--png", "--arch", "--shape", "--frames", "--height", "--width", "--text",
                        "--text-after", "--heads", "--head-dim", "--step", "--layer", "-p",
                        "wan-1.3b-480p", "cogvideox-1.5", "default"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(res.out, want[i])) fail_msg("sieve show --help lacks '%s'", want[i]);
  RUN("help", "show");
  expect_ok();
  assert_non_null(strstr(res.out, "--png"));
}

/* ---------------------------------------------------------- bad input */

static void bad_commands_and_options(void **st) {
  RUN("frobnicate");
  expect_usage("unknown command 'frobnicate'");
  RUN("--frobnicate");
  expect_usage("unknown option '--frobnicate'");
  RUN("help", "frobnicate");
  expect_usage("unknown command");
  RUN("show", "dense", "--shape", "hunyuan-720p", "--bogus");
  expect_usage("unknown option '--bogus'");
  RUN("show", "dense", "--frames");
  expect_usage("--frames needs a value");
  RUN("show", "dense", "--shape", "hunyuan-720p", "--text-after=1");
  expect_usage("takes no value");
  RUN("show");
  expect_usage("missing PATTERN");
  RUN("show", "dense", "--shape", "hunyuan-720p", "extra");
  expect_usage("unexpected argument 'extra'");
  assert_int_equal(run_argv((const char *const[]){NULL}), 2);
}

static void bad_numbers(void **st) {
  RUN("show", "dense", "--frames", "x", "--height", "4", "--width", "4");
  expect_usage("'x' is not a whole number");
  RUN("show", "dense", "--frames", "4", "--height", "4x", "--width", "4");
  expect_usage("'4x' is not a whole number");
  RUN("show", "dense", "--frames", "", "--height", "4", "--width", "4");
  expect_usage("not a whole number");
  RUN("show", "dense", "--frames", "0", "--height", "4", "--width", "4");
  expect_usage("--frames must be at least 1");
  RUN("show", "dense", "--frames", "4", "--height", "4", "--width", "-2");
  expect_usage("--width must be at least 1");
  RUN("show", "dense", "--shape", "hunyuan-720p", "--heads", "0");
  expect_usage("--heads must be at least 1");
  RUN("show", "dense", "--shape", "hunyuan-720p", "--step", "-1");
  expect_usage("--step must be at least 0");
  RUN("show", "dense", "--frames", "99999999999", "--height", "4", "--width", "4");
  expect_usage("too large");
}

static void bad_shapes(void **st) {
  RUN("show", "dense", "--shape", "nope");
  expect_usage("unknown shape 'nope'");
  assert_non_null(strstr(res.err, "hunyuan-720p"));
  assert_non_null(strstr(res.err, "wan-1.3b-480p"));
  RUN("show", "dense");  /* no shape, and the pattern declares no grid */
  expect_usage("give a shape, or declare the pattern's geometry");
  RUN("show", "dense", "--frames", "4", "--width", "4");
  expect_usage("--height missing");
  /* 2^31 tokens and more do not fit sieve's 32-bit indexing. */
  RUN("show", "dense", "--frames", "100000", "--height", "1000", "--width", "100");
  assert_int_equal(res.code, 2);
  assert_memory_equal(res.err, "sieve: ", 7);
}

static void bad_pattern_files(void **st) {
  RUN("show", "/nonexistent/p.lua", "--shape", "hunyuan-720p");
  expect_usage("cannot read '/nonexistent/p.lua'");
  RUN("show", tmpdir, "--shape", "hunyuan-720p");
  expect_usage("is a directory");
  RUN("show", "no-such-pattern", "--shape", "hunyuan-720p");
  expect_usage("no pattern 'no-such-pattern'");
  RUN("show", "dense", "--shape", "hunyuan-720p", "-p", "window");
  expect_usage("-p expects KEY=VALUE");
  RUN("show", "dense", "--shape", "hunyuan-720p", "-p", "=3");
  expect_usage("-p expects KEY=VALUE");
}

/* No argument list makes it crash: each ends with 0, 1 or 2. */
static void odd_arguments_never_crash(void **st) {
  const char *const cases[][8] = {
    {"show", "-", NULL},           {"show", "--", NULL},
    {"show", "--", "--x", NULL},   {"show", "", NULL},
    {"show", "dense", "-p", NULL}, {"show", "dense", "--shape", "", NULL},
    {"show", "-h", "x", NULL},     {"show", "dense", "--png", NULL},
    {"-", NULL},                   {"", NULL},
    {"show", "--shape=", NULL},    {"show", "dense", "--frames=1", "--height=1", "--width=1", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    run_argv(cases[i]);
    if (res.code > 2) fail_msg("case %zu: exit %d, stderr %s", i, res.code, res.err);
  }
}

/* --------------------------------------------------- shipped patterns */

static int npatterns;
static char pattern_names[64][64];

static void list_patterns(void) {
  DIR *d = opendir(patterns);
  for (struct dirent *e; d && (e = readdir(d)) && npatterns < 64;) {
    size_t l = strlen(e->d_name);
    if (l > 4 && l < 64 && !strcmp(e->d_name + l - 4, ".lua"))
      snprintf(pattern_names[npatterns++], 64, "%.*s", (int)(l - 4), e->d_name);
  }
  if (d) closedir(d);
}

/* Until the pattern layer lands, loading reports "not supported": the
** tests that need it say so and skip. */
static int library_missing(void) {
  if (!npatterns) {
    print_message("skipping: no shipped patterns in %s yet\n", patterns);
    return 1;
  }
  RUN("show", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8");
  if (res.code == 1 && strstr(res.err, "not supported")) {
    print_message("skipping: the pattern layer is not implemented yet (%s)", res.err);
    return 1;
  }
  return 0;
}

static void shows_every_shipped_pattern(void **st) {
  if (library_missing()) skip();
  char png[512];
  for (int i = 0; i < npatterns; i++) {
    assert_true(snprintf(png, sizeof png, "%s/%s.png", tmpdir, pattern_names[i]) < (int)sizeof png);
    RUN("show", pattern_names[i], "--frames", "5", "--height", "12", "--width", "20", "--heads",
        "4", "--text", "30", "--png", png);
    if (res.code) fail_msg("sieve show %s: exit %d: %s", pattern_names[i], res.code, res.err);
    assert_non_null(strstr(res.out, "density"));
    assert_non_null(strstr(res.out, "full"));
    char head[8] = {0};
    FILE *f = fopen(png, "rb");
    assert_non_null(f);
    assert_int_equal(fread(head, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(head, "\x89PNG\r\n\x1a\n", 8);
  }
}

/* The selection line names what a dynamic pattern decides at run time. */
static void show_names_the_selection(void **st) {
  if (library_missing()) skip();
  char svg[1100], sta[1100];
  snprintf(svg, sizeof svg, "%s/patterns/svg.lua", getenv("SIEVE_SOURCE_DIR") ? getenv("SIEVE_SOURCE_DIR") : ".");
  snprintf(sta, sizeof sta, "%s/patterns/sta.lua", getenv("SIEVE_SOURCE_DIR") ? getenv("SIEVE_SOURCE_DIR") : ".");
  RUN("show", svg, "--shape", "wan-1.3b-480p", "--step", "20", "--layer", "2");
  expect_ok();
  assert_non_null(strstr(res.out, "selection profiling (64 sampled queries per head) at steps 5,6,"));
  RUN("show", sta, "--shape", "wan-1.3b-480p", "-p", "search=true");
  expect_ok();
  assert_non_null(strstr(res.out, "selection mask search, full attention meanwhile (64 sampled queries per head)"));
  assert_non_null(strstr(res.out, "3x3x3"));
  RUN("show", sta, "--shape", "wan-1.3b-480p", "-p", "strategy=/nowhere/s.txt");
  expect_ok();  /* show reads no file: the plan does */
  assert_non_null(strstr(res.out, "from the mask-search file /nowhere/s.txt at steps 12,13,"));
}

/* The blocks line after `label`: "N full, N partial, N empty (..." */
static int blocks_after(const char *out, const char *label, char *buf, size_t n) {
  const char *k = strstr(out, label);
  const char *b = k ? strstr(k, "blocks, all heads: ") : NULL;
  const char *e = b ? strstr(b, " empty") : NULL;
  if (!e || (size_t)(e - b) >= n) return -1;
  snprintf(buf, n, "%.*s", (int)(e - b), b);
  return 0;
}

/* On sm_90a the kernel reads 64-token query blocks merged three to a
** row: its tables are those of the same mask declared with 192-token
** query blocks, which the sm_90a kernel reads as they are. */
static void show_reports_the_kernels_tables(void **st) {
  if (library_missing()) skip();
  const char *mask =
      "local m = sieve.mask(function(q, k)\n"
      "  return (sieve.abs(q.t - k.t):le(1) & sieve.abs(q.y - k.y):le(3) & sieve.abs(q.x - k.x):le(5)) | k.t:eq(0)\n"
      "end)\n";
  char text[1024], path64[512], merged[128], declared[128];
  snprintf(text, sizeof text, "%sreturn sieve.pattern { name = 'r', block = { q = 64, k = 64 }, mask = m }\n", mask);
  snprintf(path64, sizeof path64, "%s", write_script("r64.lua", text));
  snprintf(text, sizeof text, "%sreturn sieve.pattern { name = 'r', block = { q = 192, k = 64 }, mask = m }\n", mask);
  const char *path192 = write_script("r192.lua", text);
  RUN("show", path64, "--frames", "6", "--height", "12", "--width", "20", "--heads", "2");
  expect_ok();
  assert_non_null(strstr(res.out, "kernel    sm_90a, default config 192/64/16/2: tables of 192x64 tokens "
                                  "(64-token query blocks merged 3 to a row)"));
  assert_non_null(strstr(res.out, "visited at these blocks"));
  assert_int_equal(blocks_after(res.out, "kernel    sm_90a", merged, sizeof merged), 0);
  RUN("show", path192, "--frames", "6", "--height", "12", "--width", "20", "--heads", "2");
  expect_ok();
  assert_non_null(strstr(res.out, "reads the tables above"));
  assert_int_equal(blocks_after(res.out, "total", declared, sizeof declared), 0);
  assert_string_equal(merged, declared);
  RUN("show", path64, "--frames", "6", "--height", "12", "--width", "20", "--heads", "2", "--arch", "sm_80");
  expect_ok();
  assert_non_null(strstr(res.out, "kernel    sm_80, default config 64/32/4/2: reads the tables above"));
  RUN("show", path64, "--frames", "6", "--height", "12", "--width", "20", "--arch", "sm_99");
  expect_usage("--arch: unknown value 'sm_99'");
}

static void preset_and_explicit_override(void **st) {
  if (library_missing()) skip();
  RUN("show", pattern_names[0], "--shape", "wan-1.3b-480p", "--frames", "3", "--heads", "2");
  expect_ok();
  assert_non_null(strstr(res.out, "T3 Y30 X52"));
  assert_non_null(strstr(res.out, "2 heads"));
}

static void broken_scripts_name_file_and_line(void **st) {
  if (library_missing()) skip();
  const char *p = write_script("syntax.lua", "-- a comment\nreturn sieve.pattern {\n  name = \n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("syntax.lua:");
  p = write_script("runtime.lua", "local x = 1\nerror('boom')\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("runtime.lua:2:");
  assert_non_null(strstr(res.err, "boom"));
  p = write_script("forever.lua", "while true do end\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("forever.lua");
  p = write_script("hungry.lua", "local s = 'x'\nwhile true do s = s .. s end\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("hungry.lua:2:");
  p = write_script("io.lua", "io.open('/etc/passwd')\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("io.lua:1:");
}

static void unknown_param_is_named(void **st) {
  if (library_missing()) skip();
  RUN("show", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8", "-p",
      "no_such_param=1");
  expect_usage("no_such_param");
}

/* ------------------------------------------------------------ compile */

static void compile_bad_input(void **st) {
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--arch", "sm_70");
  expect_usage("--arch: unknown value 'sm_70'");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--dtype", "fp32");
  expect_usage("--dtype: unknown value 'fp32'");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--emit", "asm");
  expect_usage("--emit: unknown value 'asm'");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--config", "foo=1");
  expect_usage("unknown key 'foo'");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--config", "bm");
  expect_usage("expected KEY=VALUE");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--config", "bm=x");
  expect_usage("'x' is not a whole number");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--step", "1");
  expect_usage("unknown option '--step'");
  RUN("compile", "--shape", "hunyuan-720p");
  expect_usage("missing PATTERN");
}

static void compile_rejects_unfit_configs(void **st) {
  if (library_missing()) skip();
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--config", "bm=96", "-o", "/dev/null");
  expect_usage("block_m");
  RUN("compile", "dense", "--shape", "hunyuan-720p", "--config", "warps=16", "-o", "/dev/null");
  expect_usage("warps");
}

static void compile_emits_ptx_llvm_and_ir(void **st) {
  if (library_missing()) skip();
  char out[512], text[4096] = "";
  snprintf(out, sizeof out, "%s/k.ptx", tmpdir);
  RUN("compile", "dense", "--frames", "2", "--height", "8", "--width", "16", "--arch", "sm_80",
      "-o", out);
  expect_ok();
  assert_non_null(strstr(res.out, "wrote"));
  slurp(out, text, sizeof text);
  assert_non_null(strstr(text, ".target sm_80"));
  assert_non_null(strstr(text, ".entry"));
  RUN("compile", "dense", "--frames", "2", "--height", "8", "--width", "16", "--emit", "llvm",
      "--dtype", "fp16");
  expect_ok();
  assert_non_null(strstr(res.out, "define"));
  RUN("compile", "dense", "--emit", "ir");
  expect_ok();
  assert_non_null(strstr(res.out, "pattern dense"));
}

/* ------------------------------------------------------- GPU commands */

static const char *const gpu_cmds[] = {"check", "run", "bench", "tune"};

static void gpu_commands_bad_input(void **st) {
  for (int i = 0; i < 4; i++) {
    const char *c = gpu_cmds[i];
    RUN(c, "--shape", "hunyuan-720p");
    expect_usage("missing PATTERN");
    RUN(c, "dense", "--shape", "hunyuan-720p", "--dtype", "fp32");
    expect_usage("--dtype: unknown value 'fp32'");
    RUN(c, "dense", "--shape", "nope");
    expect_usage("unknown shape 'nope'");
    RUN(c, "no-such-pattern", "--shape", "hunyuan-720p");
    expect_usage("no pattern 'no-such-pattern'");
    RUN(c, "dense", "--shape", "hunyuan-720p", "extra");
    expect_usage("unexpected argument 'extra'");
    RUN(c, "dense", "--shape", "hunyuan-720p", "--bogus");
    expect_usage("unknown option '--bogus'");
  }
  RUN("check", "dense", "--shape", "hunyuan-720p", "--layout", "bhds");
  expect_usage("--layout: unknown value 'bhds'");
  RUN("check", "dense", "--shape", "hunyuan-720p", "--rows", "-1");
  expect_usage("--rows must be at least 0");
  RUN("check", "dense", "--shape", "hunyuan-720p", "--config", "bm=x");
  expect_usage("'x' is not a whole number");
  RUN("run", "dense", "--shape", "hunyuan-720p", "--batch", "0");
  expect_usage("--batch must be at least 1");
  RUN("run", "dense", "--shape", "hunyuan-720p", "--config", "foo=1");
  expect_usage("unknown key 'foo'");
  RUN("bench", "dense", "--shape", "hunyuan-720p", "--compare", "tensorflow");
  expect_usage("--compare: unknown value 'tensorflow'");
  RUN("bench", "dense", "--shape", "hunyuan-720p", "--png");
  expect_usage("--png needs a value");
  RUN("tune", "dense", "--shape", "hunyuan-720p", "--configs", "bm=96");
  expect_usage("bm=96 is not one of 64, 128");
  RUN("tune", "dense", "--shape", "hunyuan-720p", "--configs", "tile=2");
  expect_usage("unknown key 'tile'");
  RUN("tune", "dense", "--shape", "hunyuan-720p", "--budget", "0");
  expect_usage("--budget must be at least 1");
  RUN("tune", "dense", "--shape", "hunyuan-720p", "--arch", "sm_70");
  expect_usage("--arch: unknown value 'sm_70'");
  RUN("tune", "dense", "--shape", "hunyuan-720p", "--fresh=1");
  expect_usage("takes no value");
}

/* Without a driver each GPU command says so in one line and exits 1, after
** the input was checked (bad input is still 2). */
static void gpu_commands_without_a_gpu(void **st) {
  if (library_missing()) skip();
  setenv("SIEVE_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  for (int i = 0; i < 4; i++) {
    RUN(gpu_cmds[i], "dense", "--frames", "2", "--height", "4", "--width", "8");
    if (res.code != 1 || strncmp(res.err, "sieve: no GPU: ", 15) ||
        !strstr(res.err, "/nonexistent/libcuda.so.1"))
      fail_msg("sieve %s: exit %d, stderr %s", gpu_cmds[i], res.code, res.err);
    assert_ptr_equal(strchr(res.err, '\n'), res.err + strlen(res.err) - 1);
    RUN(gpu_cmds[i], "dense", "--frames", "2", "--height", "4", "--width", "8", "-p", "x=1");
    expect_usage("x");
  }
  unsetenv("SIEVE_LIBCUDA");
}

static void gpu_commands_document_their_options(void **st) {
  const char *want[][6] = {
    {"check", "--rows", "--layout", "--seed", "--config", "--step"},
    {"run", "--batch", "--rep-ms", "--config", "--dtype", "TFLOP/s"},
    {"bench", "--compare", "--png", "--batch", "dense", "FlexAttention"},
    {"tune", "--configs", "--budget", "--fresh", "--threads", "tune.db"},
    {"cache", "list", "stats", "clear", "--tuning", "SIEVE_CACHE_DIR"},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    RUN(want[i][0], "--help");
    expect_ok();
    for (int j = 1; j < 6; j++)
      if (!strstr(res.out, want[i][j])) fail_msg("sieve %s --help lacks '%s'", want[i][0], want[i][j]);
  }
}

/* ---------------------------------------------------------------- cache */

static void cache_commands(void **st) {
  char dir[512], db[4200];
  snprintf(dir, sizeof dir, "%s/kcache", tmpdir);
  setenv("SIEVE_CACHE_DIR", dir, 1);
  RUN("cache");
  expect_usage("missing what to do");
  RUN("cache", "frob");
  expect_usage("unknown cache action 'frob'");
  RUN("cache", "list", "--tuning");
  expect_usage("--tuning goes with clear");
  RUN("cache", "stats", "extra");
  expect_usage("unexpected argument 'extra'");
  RUN("cache", "list");
  expect_ok();
  assert_non_null(strstr(res.out, "no kernels cached"));

  rt_cache c;
  cg_err e = {0};
  assert_int_equal(rt_cache_open(&c, dir, &e), SIEVE_OK);
  const char *key = "sieve kernel cache key 1\nkernel attention-forward\npattern 0123456789abcdef0123\n"
                    "shape heads=2 head_dim=64\ndtype bf16\nconfig block_m=64 block_n=32 warps=4 "
                    "stages=2\narch sm_80\ndevice sm_90\n";
  assert_int_equal(rt_cache_store(&c, key, "k\0cubin", 8, &e), SIEVE_OK);
  const char *akey = "sieve kernel cache key 1\nkernel attention-forward\npattern fedcba9876543210fedc\n"
                     "layouts 0=tile{4,8,8} 1=transpose\nshape heads=2 head_dim=64\ndtype bf16\n"
                     "config block_m=64 block_n=32 warps=4 stages=2\narch sm_80\ndevice sm_90\n";
  assert_int_equal(rt_cache_store(&c, akey, "k\0cubin", 8, &e), SIEVE_OK);
  const char *tkey = "sieve table cache key 1\npattern 00112233445566778899\nshape heads=2 frames=4 height=8 "
                     "width=8 text=0 text_after=0\nbitmasks 0\nrows block_m=128 sched=0\n";
  assert_int_equal(rt_cache_store(&c, tkey, "tables", 6, &e), SIEVE_OK);
  rt_tunedb_entry ent = {{64, 32, 4, 2}, 1.0, "dense", 0};
  rt_tunedb_path(dir, db, sizeof db);
  assert_int_equal(rt_tunedb_put(db, "a b c d e", &ent, &e), SIEVE_OK);

  RUN("cache", "list");
  expect_ok();
  assert_non_null(strstr(res.out, "attention-forward"));
  assert_non_null(strstr(res.out, "ir-sha256 0123456789ab "));
  assert_non_null(strstr(res.out, "block_m=64 block_n=32"));
  /* the automatic layouts' choice on its kernel's line, and on no other */
  const char *auto_line = strstr(res.out, "ir-sha256 fedcba987654 ");
  assert_non_null(auto_line);
  assert_non_null(strstr(auto_line, "sm_80 on sm_90  layouts 0=tile{4,8,8} 1=transpose\n"));
  assert_int_equal(strstr(res.out, "layouts") - res.out, strstr(auto_line, "layouts") - res.out);
  assert_non_null(strstr(res.out, "block tables  ir-sha256 001122334455  heads=2 frames=4 height=8 width=8 text=0 "
                                  "text_after=0  block_m=128 sched=0\n"));
  RUN("cache", "list", "--long");
  expect_ok();
  assert_non_null(strstr(res.out, dir));
  RUN("cache", "stats");
  expect_ok();
  assert_non_null(strstr(res.out, "entries   3 (kernels, static block tables),"));
  assert_non_null(strstr(res.out, "1 tuned configs"));
  RUN("cache", "clear");
  expect_ok();
  assert_non_null(strstr(res.out, "removed 3 entries"));
  RUN("cache", "stats");
  assert_non_null(strstr(res.out, "entries   0 ("));
  assert_non_null(strstr(res.out, "1 tuned configs"));  /* tuning survives a plain clear */
  RUN("cache", "clear", "--tuning");
  expect_ok();
  RUN("cache", "stats");
  assert_non_null(strstr(res.out, "0 tuned configs"));
  unsetenv("SIEVE_CACHE_DIR");
}

/* ---------------------------------------------------------------- main */

static int setup(void **st) {
  const char *env = getenv("SIEVE_CLI"), *src = getenv("SIEVE_SOURCE_DIR");
  if (env) {
    snprintf(cli, sizeof cli, "%s", env);
  } else {
    ssize_t n = readlink("/proc/self/exe", cli, sizeof cli - 8);
    if (n <= 0) return -1;
    cli[n] = 0;
    strcpy(strrchr(cli, '/') + 1, "sieve");
  }
  if (access(cli, X_OK)) {
    print_error("no sieve binary at %s (set SIEVE_CLI)\n", cli);
    return -1;
  }
  snprintf(patterns, sizeof patterns, "%s/patterns", src ? src : ".");
  setenv("SIEVE_PATTERNS", patterns, 1);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/sieve-test-cli-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  list_patterns();
  return 0;
}

static int teardown(void **st) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Input is checked before the driver is opened: bad configs, no shape, a
** shape the tables refuse all exit 2 with the cause, with no driver at all. */
static void gpu_commands_check_input_first(void **st) {
  if (library_missing()) skip();
  setenv("SIEVE_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  for (int i = 0; i < 4; i++) {
    const char *c = gpu_cmds[i];
    RUN(c, "dense");
    expect_usage("shape: frames must be positive");
    RUN(c, "dense", "--frames", "2", "--height", "8", "--width", "8", "--head-dim", "96");
    expect_usage("head_dim must be 64 or 128");
    if (i == 3) continue;  /* tune takes no --config */
    RUN(c, "dense", "--frames", "2", "--height", "8", "--width", "8", "--config", "bm=48");
    expect_usage("config: block_m must be 64, 128 or 192 (got 48)");
    RUN(c, "dense", "--frames", "2", "--height", "8", "--width", "8", "--config", "warps=20");
    expect_usage("(got 20)");
    RUN(c, "dense", "--frames", "2", "--height", "8", "--width", "8", "--config", "bm=128,warps=16");
    expect_usage("16 warps need block_m 192");
  }
  unsetenv("SIEVE_LIBCUDA");
}

/* Output that cannot be written is a failure (exit 1), wherever it goes. */
static void output_failures(void **st) {
  if (library_missing()) skip();
  stdout_to = "/dev/full";
  RUN("show", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8");
  assert_int_equal(res.code, 1);
  assert_non_null(strstr(res.err, "sieve: writing standard output failed"));
  RUN("--help");
  assert_int_equal(res.code, 1);
  RUN("compile", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8", "--emit", "ir");
  assert_int_equal(res.code, 1);
  stdout_to = NULL;
  RUN("compile", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8", "--emit", "ir",
      "-o", "/nonexistent-dir/x.ir");
  assert_int_equal(res.code, 1);
  assert_non_null(strstr(res.err, "cannot write '/nonexistent-dir/x.ir'"));
  RUN("compile", pattern_names[0], "--frames", "2", "--height", "4", "--width", "8", "--emit", "ir",
      "-o", "/dev/full");
  assert_int_equal(res.code, 1);
}

/* A script's message is one line, whole, with control characters escaped:
** nothing it says can cut the line short or drive the terminal. */
static void messages_are_one_safe_line(void **st) {
  if (library_missing()) skip();
  const char *p = write_script("nl.lua", "error('\\nsecond line\\27[31mred')\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("nl.lua:1: \\nsecond line\\x1b[31mred");
  p = write_script("name.lua", "return sieve.pattern{name = 'a\\nb', mask = sieve.dense()}\n");
  RUN("show", p, "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("name.lua:1:");
  assert_null(strchr(res.err, 27));
  setenv("SIEVE_PATTERNS", "/etc", 1);
  RUN("show", "passwd", "--frames", "2", "--height", "4", "--width", "8");
  expect_usage("no pattern 'passwd': /etc holds no .lua patterns");
  unsetenv("SIEVE_PATTERNS");
}

/* An empty cache lists as empty (qsort never sees NULL), and a size limit
** past what bytes in an int64 can say is refused. */
static void cache_edge_cases(void **st) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/empty-cache", tmpdir);
  setenv("SIEVE_CACHE_DIR", dir, 1);
  RUN("cache", "list");
  expect_ok();
  assert_non_null(strstr(res.out, "no kernels cached"));
  setenv("SIEVE_CACHE_MAX_MB", "8796093022208", 1);
  RUN("cache", "stats");
  expect_usage("SIEVE_CACHE_MAX_MB=8796093022208 is too large");
  setenv("SIEVE_CACHE_MAX_MB", "8796093022207", 1);
  RUN("cache", "stats");
  expect_ok();
  /* The limit itself, not an overflowed negative (and not a search for
  ** "-9" anywhere: the temporary directory's name may hold one). */
  assert_non_null(strstr(res.out, "0 B of 8388608.0 TiB"));
  unsetenv("SIEVE_CACHE_MAX_MB");
  unsetenv("SIEVE_CACHE_DIR");
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(help_lists_commands_and_shapes),
    cmocka_unit_test(every_command_has_help),
    cmocka_unit_test(show_help_documents_options),
    cmocka_unit_test(bad_commands_and_options),
    cmocka_unit_test(bad_numbers),
    cmocka_unit_test(bad_shapes),
    cmocka_unit_test(bad_pattern_files),
    cmocka_unit_test(odd_arguments_never_crash),
    cmocka_unit_test(shows_every_shipped_pattern),
    cmocka_unit_test(show_names_the_selection),
    cmocka_unit_test(preset_and_explicit_override),
    cmocka_unit_test(broken_scripts_name_file_and_line),
    cmocka_unit_test(unknown_param_is_named),
    cmocka_unit_test(compile_bad_input),
    cmocka_unit_test(compile_rejects_unfit_configs),
    cmocka_unit_test(compile_emits_ptx_llvm_and_ir),
    cmocka_unit_test(gpu_commands_bad_input),
    cmocka_unit_test(gpu_commands_without_a_gpu),
    cmocka_unit_test(gpu_commands_document_their_options),
    cmocka_unit_test(cache_commands),
    cmocka_unit_test(gpu_commands_check_input_first),
    cmocka_unit_test(output_failures),
    cmocka_unit_test(messages_are_one_safe_line),
    cmocka_unit_test(cache_edge_cases),
    cmocka_unit_test(show_reports_the_kernels_tables),
  };
  return cmocka_run_group_tests(t, setup, teardown);
}
