#include "mpi/communicator.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

#include "cuem/errors.hpp"

namespace cuem::mpi {
namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw DeviceError(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

int count_of(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw InvalidArgument("a distributed reduction of " + std::to_string(n) +
                          " bytes is beyond one MPI message (2 GiB): use fewer components or features per fit");
  return static_cast<int>(n);
}

// A rank's contribution on the wire: its status kind, then its message or its payload.
std::string pack(const LocalStatus& s, const std::string& label, const std::string& payload) {
  std::string out(1, static_cast<char>(s.kind));
  out += s.failed() ? label + ": " + s.message : payload;
  return out;
}

}  // namespace

void AgreedFailure::rethrow_typed() const {
  switch (kind_) {
    case FailureKind::invalid_argument: throw InvalidArgument(what());
    case FailureKind::data: throw DataError(what());
    case FailureKind::numerical: throw NumericalError(what());
    case FailureKind::device: throw DeviceError(what());
    case FailureKind::interrupted: throw Interrupted(what());
    default: throw std::runtime_error(what());
  }
}

LocalStatus run_local(const std::function<void()>& work) {
  try {
    work();
    return {};
  } catch (const InvalidArgument& e) {
    return {FailureKind::invalid_argument, e.what()};
  } catch (const DataError& e) {
    return {FailureKind::data, e.what()};
  } catch (const NumericalError& e) {
    return {FailureKind::numerical, e.what()};
  } catch (const DeviceError& e) {
    return {FailureKind::device, e.what()};
  } catch (const Interrupted& e) {
    return {FailureKind::interrupted, e.what()};
  } catch (const std::bad_alloc&) {
    return {FailureKind::data, "out of memory: this rank's rows or the model do not fit in its memory"};
  } catch (const std::exception& e) {
    return {FailureKind::other, e.what()};
  }
}

Communicator::Communicator(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_init_ = true;
  }
  // Errors come back as codes (check() turns them into DeviceError) rather than ending the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  label_ = "rank " + std::to_string(rank_);
}

Communicator::~Communicator() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_init_ && !finalised) MPI_Finalize();
}

std::vector<std::string> Communicator::all_gather(const LocalStatus& status, const std::string& mine) const {
  const std::string wire = pack(status, label_, mine);
  int my_count = count_of(wire.size());
  std::vector<int> counts(static_cast<std::size_t>(size_));
  check(MPI_Allgather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  std::vector<int> displs(static_cast<std::size_t>(size_));
  std::size_t total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<std::size_t>(r)] = count_of(total);
    total += static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
  }
  count_of(total);
  std::string all(total, '\0');
  check(MPI_Allgatherv(wire.data(), my_count, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
  std::vector<std::string> parts;
  std::vector<LocalStatus> statuses;
  for (int r = 0; r < size_; ++r) {
    const std::size_t at = static_cast<std::size_t>(displs[static_cast<std::size_t>(r)]);
    const std::size_t n = static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
    const auto kind = static_cast<FailureKind>(all[at]);
    std::string body = all.substr(at + 1, n - 1);
    if (kind != FailureKind::none) {
      statuses.push_back({kind, std::move(body)});
    } else {
      statuses.push_back({});
      parts.push_back(std::move(body));
    }
  }
  raise_first(statuses);
  return parts;
}

void Communicator::raise_first(const std::vector<LocalStatus>& statuses) const {
  for (const LocalStatus& s : statuses)
    if (s.failed()) throw AgreedFailure(s.kind, s.message);
}

void Communicator::agree(const LocalStatus& status) const { all_gather(status, std::string()); }

std::vector<double> Communicator::ordered_sum(const LocalStatus& status, const std::vector<std::vector<double>>& parts,
                                              std::size_t length) const {
  agree(status);
  constexpr int kTag = 18;
  constexpr std::size_t kBlock = std::size_t{1} << 15;  // doubles a message: 256 KiB
  std::vector<double> sum(length, 0.0);
  std::vector<MPI_Request> sends;
  for (std::size_t b0 = 0; b0 < length; b0 += kBlock) {
    const std::size_t n = std::min(kBlock, length - b0);
    double* acc = sum.data() + b0;
    std::size_t first = 0;
    if (rank_ == 0) {
      if (!parts.empty()) std::copy_n(parts[0].data() + b0, n, acc);
      first = 1;
    } else {
      check(MPI_Recv(acc, count_of(n), MPI_DOUBLE, rank_ - 1, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    }
    for (std::size_t p = first; p < parts.size(); ++p) {
      const double* x = parts[p].data() + b0;
      for (std::size_t i = 0; i < n; ++i) acc[i] += x[i];
    }
    if (rank_ + 1 < size_) {
      sends.emplace_back();
      check(MPI_Isend(acc, count_of(n), MPI_DOUBLE, rank_ + 1, kTag, MPI_COMM_WORLD, &sends.back()), "MPI_Isend");
    }
  }
  if (!sends.empty())
    check(MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  check(MPI_Bcast(sum.data(), count_of(length), MPI_DOUBLE, size_ - 1, MPI_COMM_WORLD), "MPI_Bcast");
  return sum;
}

std::vector<double> Communicator::all_sum(const LocalStatus& status, std::vector<double> values) const {
  agree(status);
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce");
  return values;
}

void Communicator::barrier() const { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

std::string Communicator::broadcast(const std::string& bytes, int root) const {
  unsigned long long n = bytes.size();
  check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == root ? bytes : std::string(static_cast<std::size_t>(n), '\0');
  check(MPI_Bcast(out.data(), count_of(out.size()), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
}

void Communicator::abort(const std::string& message, int code) const {
  std::fprintf(stderr, "cuem: %s: %s; ending every rank (MPI_Abort)\n", label_.c_str(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();
}

}  // namespace cuem::mpi
