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

/*
** The optimisation pipeline: LLVM 22's default<O3> for NVPTX (as
** `opt -mtriple=nvptx64-nvidia-cuda -passes='default<O3>'
** -print-pipeline-passes` prints it) less what does nothing for one kernel
** with no calls: coroutines, OpenMP, memprof, library calls and
** instrumentation; and less the loop and SLP vectorizers, with the three
** instcombine runs that clean up after them. Those vectorizers took a third
** to a half of the optimisation time on the larger kernels and changed no
** PTX (NVPTX has few vector instructions for them to use), and neither did
** the rest: every shipped pattern's kernel, sm_80 and sm_90a, D = 64 and
** 128, came out byte-identical (bench/RESULTS.md). LLVMPassBuilderOptions'
** SLPVectorization switch does not reach the pass in LLVM 22, hence the
** explicit text (CMake insists on LLVM 22; another version's parser may
** refuse it, and every kernel then fails with its words).
*/
#define IC "instcombine<max-iterations=1;no-verify-fixpoint>"
#define SCFG(o) "simplifycfg<bonus-inst-threshold=1;" o ";speculate-blocks;simplify-cond-branch;" \
                "no-hoist-loads-stores-with-cond-faulting;no-speculate-unpredictables>"
#define SCFG_LOOP SCFG("no-forward-switch-cond;switch-range-to-icmp;no-switch-to-arithmetic;no-switch-to-lookup;" \
                       "keep-loops;no-hoist-common-insts;no-sink-common-insts")
static const char *const pipeline =
  "nvvm-reflect,function(nvvm-intr-range),function<eager-inv>("
  SCFG("no-forward-switch-cond;no-switch-range-to-icmp;no-switch-to-arithmetic;no-switch-to-lookup;keep-loops;"
       "no-hoist-common-insts;no-sink-common-insts")
  ",sroa<modify-cfg>,early-cse<>),ipsccp,globalopt,function<eager-inv>(mem2reg," IC "," SCFG_LOOP "),"
  "always-inline,require<globals-aa>,function(invalidate<aa>),require<profile-summary>,"
  "cgscc(devirt<4>(inline,function-attrs<skip-non-recursive-function-attrs>,argpromotion,"
  "function<eager-inv;no-rerun>(sroa<modify-cfg>,early-cse<memssa>,speculative-execution<only-if-divergent-target>,"
  "jump-threading,correlated-propagation," SCFG_LOOP "," IC ",aggressive-instcombine,tailcallelim," SCFG_LOOP ","
  "reassociate,constraint-elimination,loop-mssa(loop-instsimplify,loop-simplifycfg,licm<no-allowspeculation>,"
  "loop-rotate<header-duplication;no-prepare-for-lto>,licm<allowspeculation>,simple-loop-unswitch<nontrivial;trivial>),"
  SCFG_LOOP "," IC ",loop(loop-idiom,indvars,extra-simple-loop-unswitch-passes,loop-deletion,loop-unroll-full),"
  "sroa<modify-cfg>,vector-combine,mldst-motion<no-split-footer-bb>,gvn<>,sccp,bdce," IC ","
  "jump-threading,correlated-propagation,adce,memcpyopt,dse,loop-mssa(licm<allowspeculation>),"
  SCFG("no-forward-switch-cond;switch-range-to-icmp;switch-to-arithmetic;no-switch-to-lookup;keep-loops;"
       "hoist-common-insts;sink-common-insts")
  "," IC "),function-attrs,function(require<should-not-run-function-passes>))),"
  "deadargelim,globalopt,globaldce,rpo-function-attrs,recompute-globalsaa,"
  "function<eager-inv>(drop-unnecessary-assumes,loop(loop-rotate<header-duplication;no-prepare-for-lto>,loop-deletion),"
  "drop-unnecessary-assumes,infer-alignment,"
  SCFG("forward-switch-cond;switch-range-to-icmp;switch-to-arithmetic;switch-to-lookup;no-keep-loops;"
       "hoist-common-insts;sink-common-insts")
  ",vector-combine,loop-unroll<O3>,transform-warning,sroa<preserve-cfg>,infer-alignment,"
  "loop-mssa(licm<allowspeculation>),alignment-from-assumptions,loop-sink,instsimplify,div-rem-pairs,tailcallelim,"
  "simplifycfg<bonus-inst-threshold=1;no-forward-switch-cond;switch-range-to-icmp;switch-to-arithmetic;"
  "no-switch-to-lookup;keep-loops;no-hoist-common-insts;hoist-loads-stores-with-cond-faulting;no-sink-common-insts;"
  "speculate-blocks;simplify-cond-branch;speculate-unpredictables>),globaldce,verify";

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
  LLVMErrorRef err = LLVMRunPasses(m, pipeline, tm, po);
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
