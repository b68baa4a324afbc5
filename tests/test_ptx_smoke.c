#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <llvm-c/Core.h>
#include "cg_ptx.h"

static void emits_a_kernel(void **st) {
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("k", c);
  LLVMTypeRef ptr = LLVMPointerTypeInContext(c, 1);
  LLVMTypeRef ft = LLVMFunctionType(LLVMVoidTypeInContext(c), &ptr, 1, 0);
  LLVMValueRef f = LLVMAddFunction(m, "k", ft);
  LLVMSetFunctionCallConv(f, 71 /* PTX_Kernel */);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, f, "e"));
  LLVMBuildStore(b, LLVMConstReal(LLVMFloatTypeInContext(c), 1.5), LLVMGetParam(f, 0));
  LLVMBuildRetVoid(b);
  char *ptx = NULL;
  cg_err e = {0};
  assert_int_equal(cg_emit_ptx(m, CG_SM80, &ptx, &e), SIEVE_OK);
  assert_non_null(strstr(ptx, ".entry k"));
  assert_non_null(strstr(ptx, ".target sm_80"));
  free(ptx);
  LLVMDisposeBuilder(b);
  LLVMDisposeModule(m);
  LLVMContextDispose(c);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(emits_a_kernel)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
