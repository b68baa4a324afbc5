/*
** LLVM module -> PTX text through LLVM's NVPTX backend.
*/
#ifndef CG_PTX_H
#define CG_PTX_H

#include <llvm-c/Core.h>

#include "cg_emit.h"
#include "cg_err.h"

typedef enum cg_arch { CG_SM80, CG_SM90A } cg_arch;

const char *cg_arch_name(cg_arch a);           /* "sm_80", "sm_90a" */
int cg_arch_parse(const char *s, cg_arch *out); /* accepts sm_80, sm_90, sm_90a */

/* Optimises the module (LLVM's O3, trimmed: cg_ptx.c) and emits PTX into *ptx (malloc'd). The module
** is verified first; a broken module is a SIEVE_ERR_CODEGEN with LLVM's
** words. */
sieve_status cg_emit_ptx(LLVMModuleRef m, cg_arch arch, char **ptx, cg_err *e);
/* The emitter's first failure, if it had one; else cg_emit_ptx of its module. */
sieve_status cg_em_ptx(cg_em *em, cg_arch arch, char **ptx, cg_err *e);
/* Textual LLVM IR of the module (malloc'd). */
char *cg_module_text(LLVMModuleRef m);

#endif
