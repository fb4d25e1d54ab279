#pragma once
// The measured ceilings of a CUDA device (bench/ceilings.cu).
#include <string>

namespace cuem::bench {

struct Ceilings {
  std::string device;
  double copy_bytes_per_s = 0;   ///< device-to-device copy, bytes read + written
  double sgemm_flops_per_s = 0;  ///< cuBLAS SGEMM, 8192^3 (FP32, no TF32)
  double dgemm_flops_per_s = 0;  ///< cuBLAS DGEMM, 8192^3
};

Ceilings measure_ceilings(int device);

}  // namespace cuem::bench
