/*
** Canonical text of expression graphs. Node numbers come from a depth-first
** walk in which every node's operands are already in canonical order (the
** constructors sort commutative operands by structural hash), so the text
** depends on the expression, not on the order the script built it in.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_expr.h"

int cg_buf_printf(cg_buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int k = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) return -1;
    if ((size_t)k < room) {
      b->len += (size_t)k;
      return 0;
    }
    size_t nc = b->cap ? b->cap * 2 : 1024;
    while (nc - b->len <= (size_t)k) nc *= 2;
    char *s = realloc(b->s, nc);
    if (!s) return -1;
    b->s = s;
    b->cap = nc;
  }
}

void cg_buf_free(cg_buf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

static int print_node(const cg_graph *g, cg_ref r, const int *num, cg_buf *b) {
  const cg_node *n = cg_node_at(g, r);
  cg_ref ops[3] = {n->a, n->b, n->c};
  int e = cg_buf_printf(b, "%%%d = %s", num[r], cg_op_name((cg_op)n->op));
  if (n->op == CG_CONST && n->type == CG_BOOL)
    e |= cg_buf_printf(b, " %s", n->imm ? "true" : "false");
  else if (n->op == CG_CONST)
    e |= cg_buf_printf(b, " %lld", (long long)n->imm);
  else if (n->op == CG_VAR)
    e |= cg_buf_printf(b, " %s", cg_var_name((cg_var)n->imm));
  for (int i = 0; i < 3; i++)
    if (ops[i] != CG_NONE) e |= cg_buf_printf(b, " %%%d", num[ops[i]]);
  return e | cg_buf_printf(b, "\n");
}

/*
** Post-order numbering with an explicit stack: scripts build graphs deeper
** than any C stack (a loop of 60,000 `e = e * 3 + k.t`), and a load must
** not crash on them. stk holds (node, next operand) pairs; a node is pushed
** once (num[] is set to -2 while it is on the stack), so n entries suffice.
*/
static int walk(const cg_graph *g, cg_ref root, int *num, int *next, int *stk, cg_buf *b) {
  if (num[root] >= 0) return 0;
  int sp = 0;
  stk[sp++] = root;
  stk[sp++] = 0;
  num[root] = -2;
  while (sp) {
    cg_ref r = stk[sp - 2];
    int i = stk[sp - 1];
    const cg_node *n = cg_node_at(g, r);
    cg_ref ops[3] = {n->a, n->b, n->c};
    while (i < 3 && (ops[i] == CG_NONE || num[ops[i]] != -1)) i++;
    if (i < 3) {
      stk[sp - 1] = i + 1;
      num[ops[i]] = -2;
      stk[sp++] = ops[i];
      stk[sp++] = 0;
      continue;
    }
    sp -= 2;
    num[r] = (*next)++;
    if (print_node(g, r, num, b)) return -1;
  }
  return 0;
}

int cg_dump(const cg_graph *g, const cg_ref *roots, int nroots,
            const char *const *root_names, cg_buf *buf) {
  int n = cg_graph_size(g);
  int *num = malloc(sizeof(int) * (size_t)(n ? n : 1));
  int *stk = malloc(sizeof(int) * 2 * (size_t)(n ? n : 1));
  if (!num || !stk) {
    free(num);
    free(stk);
    return -1;
  }
  memset(num, 0xff, sizeof(int) * (size_t)(n ? n : 1));
  int next = 0, e = 0;
  for (int i = 0; i < nroots && !e; i++) {
    if (roots[i] == CG_NONE) {
      e = cg_buf_printf(buf, "%s = none\n", root_names ? root_names[i] : "root");
      continue;
    }
    e = walk(g, roots[i], num, &next, stk, buf);
    if (!e) e = cg_buf_printf(buf, "%s = %%%d\n", root_names ? root_names[i] : "root", num[roots[i]]);
  }
  free(num);
  free(stk);
  return e;
}
