#pragma once
// The emulated runtime's stand-in for cub::BlockReduce (tests/emu/cuda_runtime.h): the
// same interface for the uses in kernels/, a fixed-order sum whose result, as in CUB, is
// defined in thread 0 only.
#include <cuda_runtime.h>

namespace cub {

enum BlockReduceAlgorithm { BLOCK_REDUCE_RAKING_COMMUTATIVE_ONLY, BLOCK_REDUCE_RAKING, BLOCK_REDUCE_WARP_REDUCTIONS };

template <typename T, int BLOCK_DIM_X, BlockReduceAlgorithm ALGORITHM = BLOCK_REDUCE_WARP_REDUCTIONS>
class BlockReduce {
 public:
  struct TempStorage {
    T values[BLOCK_DIM_X];
  };
  explicit BlockReduce(TempStorage& temp) : temp_(temp) {}

  T Sum(T input) {
    if (blockDim.x != BLOCK_DIM_X || blockDim.y != 1 || blockDim.z != 1)
      ::cuem::emu::fail("cub::BlockReduce used in a block of another shape than its BLOCK_DIM_X");
    const unsigned tid = threadIdx.x;
    temp_.values[tid] = input;
    __syncthreads();
    if (tid != 0) return input;  // undefined in CUB outside thread 0
    T total = temp_.values[0];
    for (int i = 1; i < BLOCK_DIM_X; ++i) total = total + temp_.values[i];
    return total;
  }

 private:
  TempStorage& temp_;
};

}  // namespace cub
