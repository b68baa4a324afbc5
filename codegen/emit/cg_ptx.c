/*
** PTX emission. The NVPTX target is initialised once per process; a
** target machine is made per emission since the CPU (sm_xx) varies.
*/
#include "cg_ptx.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_nvptx(void) {
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
}

const char *cg_arch_name(cg_arch a) { return a == CG_SM90A ? "sm_90a" : "sm_80"; }

int cg_arch_parse(const char *s, cg_arch *out) {
  if (!strcmp(s, "sm_80") || !strcmp(s, "sm80")) *out = CG_SM80;
  else if (!strcmp(s, "sm_90") || !strcmp(s, "sm_90a") || !strcmp(s, "sm90")) *out = CG_SM90A;
  else return -1;
  return 0;
}

char *cg_module_text(LLVMModuleRef m) {
  char *s = LLVMPrintModuleToString(m);
  char *r = s ? strdup(s) : NULL;
  LLVMDisposeMessage(s);
  return r;
}

sieve_status cg_emit_ptx(LLVMModuleRef m, cg_arch arch, char **ptx, cg_err *e) {
  pthread_once(&init_once, init_nvptx);
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
    sieve_status st = cg_fail(e, SIEVE_ERR_CODEGEN, "generated module is invalid: %s", msg);
    LLVMDisposeMessage(msg);
    return st;
  }
  LLVMDisposeMessage(msg);
  const char *triple = "nvptx64-nvidia-cuda";
  LLVMSetTarget(m, triple);
  LLVMTargetRef t;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    sieve_status st = cg_fail(e, SIEVE_ERR_CODEGEN, "NVPTX target missing: %s", msg);
    LLVMDisposeMessage(msg);
    return st;
  }
  /* PTX 8.0 covers sm_90a (wgmma, setmaxnreg) and is read by driver 12.0+. */
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cg_arch_name(arch), "+ptx80",
                                                    LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                                    LLVMCodeModelDefault);
  if (!tm) return cg_fail(e, SIEVE_ERR_CODEGEN, "cannot make an NVPTX target machine for %s", cg_arch_name(arch));
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(m, td);
  LLVMDisposeTargetData(td);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef err = LLVMRunPasses(m, "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) {
    char *em = LLVMGetErrorMessage(err);
    sieve_status st = cg_fail(e, SIEVE_ERR_CODEGEN, "LLVM passes failed: %s", em);
    LLVMDisposeErrorMessage(em);
    LLVMDisposeTargetMachine(tm);
    return st;
  }
  LLVMMemoryBufferRef buf;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf)) {
    sieve_status st = cg_fail(e, SIEVE_ERR_CODEGEN, "PTX emission failed: %s", msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeTargetMachine(tm);
    return st;
  }
  size_t n = LLVMGetBufferSize(buf);
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, LLVMGetBufferStart(buf), n);
    s[n] = 0;
  }
  LLVMDisposeMemoryBuffer(buf);
  LLVMDisposeTargetMachine(tm);
  if (!s) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory holding PTX");
  *ptx = s;
  return SIEVE_OK;
}

sieve_status cg_em_ptx(cg_em *em, cg_arch arch, char **ptx, cg_err *e) {
  if (em->bad) return cg_fail(e, em->err.status, "%s", em->err.msg);
  return cg_emit_ptx(em->mod, arch, ptx, e);
}
