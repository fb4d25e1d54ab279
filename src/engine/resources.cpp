#include <utility>

#include "core/validate.hpp"
#include "engine/placed_data.hpp"

namespace cuem {

Resources::Resources(const ResourceOptions& options) : impl_(std::make_unique<Impl>(Impl{options, nullptr})) {}
Resources::~Resources() = default;
Resources::Resources(Resources&&) noexcept = default;
Resources& Resources::operator=(Resources&&) noexcept = default;
const ResourceOptions& Resources::options() const noexcept { return impl_->options; }

PlacedData PlacedData::Impl::unchecked(Resources& resources, DataView X, WeightView w) {
  auto impl = std::make_unique<Impl>();
  impl->resources = &resources;
  impl->X = X;
  impl->w = w;
  return PlacedData(std::move(impl));
}

Primitives& PlacedData::Impl::primitives() {
  if (!placed) {
    const ResourceOptions& o = resources->options();
    placed = make_primitives(X, w, {o.device, o.precision, o.device_memory_limit, o.cuda_tuning}, &notice,
                             &resources->impl().cuda_context);
  }
  return *placed;
}

PlacedData::PlacedData(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

PlacedData::PlacedData(Resources& resources, DataView X, WeightView w, MissingPolicy missing) {
  const bool has_missing = validate_data(X, missing);
  validate_weights(w, X);
  *this = Impl::unchecked(resources, X, w);
  impl_->has_missing = has_missing;
}

PlacedData::~PlacedData() = default;
PlacedData::PlacedData(PlacedData&&) noexcept = default;
PlacedData& PlacedData::operator=(PlacedData&&) noexcept = default;
DataView PlacedData::data() const noexcept { return impl_->X; }
WeightView PlacedData::weights() const noexcept { return impl_->w; }
const std::string& PlacedData::notice() const noexcept { return impl_->notice; }
std::string PlacedData::description() const { return impl_->placed ? impl_->placed->description() : "(not placed yet)"; }

}  // namespace cuem
