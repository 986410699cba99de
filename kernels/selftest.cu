// The kernel `impasto doctor` and the runtime tests launch: y[i] = a * x[i] + b, over n floats.
// It also proves the fatbin loads and a typed launch passes scalars and pointers right.
IMPASTO_KERNEL void impasto_selftest_axpb(float* y, const float* x, float a, float b, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b;
}
