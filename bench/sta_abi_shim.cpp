// STA's own kernel on PyPI (st_attn 0.0.7, FastVideo's ThunderKittens kernel)
// was built against a torch whose c10::cuda::c10_cuda_check_implementation
// took the line as int; torch 2.11's takes it unsigned, so st_attn_cuda
// fails to load there. Loaded with RTLD_GLOBAL before it (bench/sta_peer.py),
// this library gives the old name to the new function.
//
//   g++ -O2 -shared -fPIC -o sta_abi_shim.so bench/sta_abi_shim.cpp \
//       -L<torch>/lib -lc10_cuda
namespace c10 {
namespace cuda {
void c10_cuda_check_implementation(int err, const char *file, const char *func, unsigned line, bool device_asserts);
void c10_cuda_check_implementation(int err, const char *file, const char *func, int line, bool device_asserts) {
  c10_cuda_check_implementation(err, file, func, static_cast<unsigned>(line), device_asserts);
}
}  // namespace cuda
}  // namespace c10
