// Unity translation unit: every kernel file of impasto, compiled into one fatbin (kernels/build.sh).
// All kernels are extern "C" so that the runtime finds them by name with cuModuleGetFunction.
#include "common.cuh"
#include "selftest.cu"
#include "elementwise.cu"
#include "random.cu"
#include "layernorm.cu"
#include "rope.cu"
#include "quant.cu"
#include "attention.cu"
#include "encoders.cu"
