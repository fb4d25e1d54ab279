#pragma once
// A fit's interrupt check (FitOptions::interrupted and its kin) set on the primitives it
// runs on for the fit's lifetime, and cleared at its end: placed data may outlive the fit,
// and must not keep calling a check that belongs to it.
#include <functional>
#include <initializer_list>

#include "engine/primitives.hpp"

namespace cuem::engine {

class InterruptScope {
 public:
  /// Null primitives are skipped; an empty check sets nothing.
  InterruptScope(const std::function<bool()>& check, std::initializer_list<Primitives*> prims) {
    int n = 0;
    for (Primitives* p : prims)
      if (p && n < kMax) prims_[n++] = p;
    if (check)
      for (Primitives* p : prims_)
        if (p) p->set_interrupt(check);
  }
  ~InterruptScope() {
    for (Primitives* p : prims_)
      if (p) p->set_interrupt({});
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  static constexpr int kMax = 2;
  Primitives* prims_[kMax] = {nullptr, nullptr};
};

}  // namespace cuem::engine
