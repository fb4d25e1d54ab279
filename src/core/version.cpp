#include "cuem/version.hpp"

namespace cuem {

const char* version() noexcept { return CUEM_VERSION_STRING; }

bool built_with_cuda() noexcept {
#if defined(CUEM_HAVE_CUDA)
  return true;
#else
  return false;
#endif
}

}  // namespace cuem
