// cuem fit DATA ... --distributed under mpirun: every rank loads the same file (or the
// same shard files, their rows concatenated), keeps its own rows (in place where the format
// allows: .npy and raw binary are memory-mapped, and a rank touches only its rows' pages),
// checks them, and joins the fit. Failures are agreed in each collective; rank 0 alone
// speaks.
#include "mpi/cli_fit.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli/cmd_hmm.hpp"
#include "cli/outputs.hpp"
#include "cuem/errors.hpp"
#include "engine/hmm_chain.hpp"
#include "io/atomic_file.hpp"
#include "io/hmm_json.hpp"
#include "io/model_json.hpp"
#include "mpi/communicator.hpp"
#include "mpi/distributed_fit.hpp"
#include "mpi/distributed_hmm.hpp"

namespace cuem::cli {
namespace {

// The files DATA names: itself where it is a file; else a comma-separated list, or a glob
// pattern (its matches sorted by name), of shard files whose rows are concatenated in
// that order.
std::vector<std::string> shard_paths(const std::string& data) {
  struct stat st {};
  if (io::is_stdin_name(data) || ::stat(data.c_str(), &st) == 0) return {data};
  std::vector<std::string> paths;
  if (data.find(',') != std::string::npos) {
    std::size_t begin = 0;
    while (begin <= data.size()) {
      const std::size_t end = std::min(data.find(',', begin), data.size());
      if (end > begin) paths.push_back(data.substr(begin, end - begin));
      begin = end + 1;
    }
  } else if (data.find_first_of("*?[") != std::string::npos) {
    glob_t found{};
    const int rc = ::glob(data.c_str(), 0, nullptr, &found);
    for (std::size_t i = 0; rc == 0 && i < found.gl_pathc; ++i) paths.emplace_back(found.gl_pathv[i]);
    ::globfree(&found);
    if (paths.empty()) throw DataError("no file matches the shard pattern '" + data + "'");
    std::sort(paths.begin(), paths.end());
  } else {
    paths.push_back(data);  // the loader names what is wrong with it
  }
  return paths;
}

// This rank's rows of the shards' concatenation: in place where they lie in one shard,
// else copied (to float64) into `copy`.
DataView rows_of_shards(const std::vector<io::Table>& shards, std::size_t begin, std::size_t end,
                        std::vector<double>& copy) {
  const std::size_t D = shards.front().cols;
  std::size_t offset = 0;
  for (const io::Table& t : shards) {
    if (begin >= offset && end <= offset + t.rows) return mpi::row_range(t.view(), begin - offset, end - offset);
    offset += t.rows;
  }
  copy.assign((end - begin) * D, 0.0);
  offset = 0;
  for (const io::Table& t : shards) {
    const DataView v = t.view();
    for (std::size_t i = std::max(begin, offset); i < std::min(end, offset + t.rows); ++i)
      for (std::size_t c = 0; c < D; ++c) copy[(i - begin) * D + c] = v.value(i - offset, c);
    offset += t.rows;
  }
  return DataView(copy.data(), end - begin, D);
}

// The distributed fit's options from the command line's.
mpi::DistributedOptions distributed_options(const DistributedArgs& d) {
  mpi::DistributedOptions options;
  options.segment_rows = d.segment_rows;
  options.reduction = mpi::parse_reduction(d.reduction);
  options.checkpoint = d.checkpoint;
  options.checkpoint_every = d.checkpoint_every;
  return options;
}

// Rank 0 writes the outputs: it runs `check` on their paths, and every rank learns its answer.
void check_outputs_on_root(mpi::Communicator& comm, const std::function<void()>& check) {
  comm.all_gather(mpi::run_local([&] {
                    if (comm.rank() != 0) return;
                    try {
                      check();
                    } catch (const std::exception& e) {
                      throw InvalidArgument(e.what());
                    }
                  }),
                  std::string());
}

// This rank's part of DATA (one file or shard files, their rows concatenated): the layout
// that layout_of gives for the total rows, the rows it gives this rank, checked (finite
// values), and the whole data's digest. Every rank learns of any rank's failure.
struct RankData {
  std::vector<io::Table> shards;
  std::vector<double> copied;
  mpi::SegmentLayout layout;
  DataView rows;
  std::uint64_t digest = 0;
};

void load_rank_data(mpi::Communicator& comm, const DataArgs& data, const GlobalFlags& flags,
                    const std::function<mpi::SegmentLayout(std::size_t n_rows)>& layout_of, RankData& out) {
  if (io::is_stdin_name(data.path))
    throw UsageError("--distributed reads DATA from files every rank can open, not '-'");
  const mpi::LocalStatus loaded = mpi::run_local([&] {
    std::size_t n_rows = 0;
    const std::vector<std::string> paths = shard_paths(data.path);
    for (const std::string& path : paths) {
      DataArgs one = data;
      one.path = path;
      out.shards.push_back(with_data_name(io::display_name(path), [&] { return load_table(one, flags); }));
      if (out.shards.back().cols != out.shards.front().cols)
        throw DataError("shard " + path + " has " + std::to_string(out.shards.back().cols) + " columns but " +
                        paths.front() + " has " + std::to_string(out.shards.front().cols) +
                        ": every shard must have the same columns");
      n_rows += out.shards.back().rows;
    }
    out.layout = layout_of(n_rows);
    out.rows = rows_of_shards(out.shards, out.layout.rank_row_begin(comm.rank()),
                              out.layout.rank_row_end(comm.rank()), out.copied);
  });
  if (!loaded.failed()) comm.set_rank_label(out.layout.rank_label(comm.rank()) + " of " + io::display_name(data.path));
  comm.all_gather(loaded, std::string());
  std::vector<std::uint64_t> digests;
  const mpi::LocalStatus checked = mpi::run_local([&] {
    digests = mpi::check_rows(out.rows, out.layout.rank_row_begin(comm.rank()), out.layout, comm.rank());
  });
  out.digest = mpi::data_digest(comm, checked, digests);
}

int run_on_rank(mpi::Communicator& comm, const DataArgs& data, const std::string& weights_path, const FitArgs& fit_args,
                const std::string& output, const std::string& trace, const DistributedArgs& d, GlobalFlags flags,
                const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv) {
  const bool root = comm.rank() == 0;
  if (!root) flags.quiet = true;
  if (!data.missing.empty() && data.missing != "error")
    throw UsageError("--missing marginalize is not distributed: a distributed fit needs complete rows");
  FitOptions o = to_fit_options(fit_args);
  if (o.init == InitMethod::random)
    throw UsageError("--init random draws responsibilities by a row's place within a device's rows, which would "
                     "change with the number of ranks: use kmeans, k-means++ or random_from_data with --distributed");
  const mpi::DistributedOptions options = distributed_options(d);
  check_outputs_on_root(comm, [&] { check_outputs({output, trace, d.checkpoint}, {data.path, weights_path}); });

  const std::string data_name = io::display_name(data.path);
  if (io::is_stdin_name(weights_path))
    throw UsageError("--distributed reads DATA and --weights from files every rank can open, not '-'");
  RankData rank_data;
  load_rank_data(comm, data, flags, [&](std::size_t n) { return mpi::SegmentLayout{n, d.segment_rows, comm.size()}; },
                 rank_data);
  const mpi::SegmentLayout& layout = rank_data.layout;
  const DataView rows = rank_data.rows;
  const io::Table& table = rank_data.shards.front();  // the columns (every shard's the same)
  const std::size_t n_rows = layout.n_rows;
  // Every rank reads all of the weights (one value a row): the host's k-means steps index
  // them by global row.
  std::vector<double> weights;
  comm.all_gather(mpi::run_local([&] {
                    io::Table whole;
                    whole.rows = n_rows;
                    whole.cols = table.cols;
                    weights = load_weights(weights_path, whole, flags);
                  }),
                  std::string());
  double total_weight = static_cast<double>(n_rows);
  if (!weights.empty()) {
    total_weight = 0.0;
    for (double v : weights) total_weight += v;
  }
  const std::uint64_t digest = rank_data.digest;
  note(flags, data_name + ": " + std::to_string(n_rows) + " points x " + std::to_string(table.cols) +
                  " features over " + std::to_string(comm.size()) + " rank(s)");

  o.on_iteration = progress_reporter(flags, o.max_iter, o.n_init);
  const mpi::DistributedFitResult dr = mpi::fit_distributed(comm, rows, layout, o, options, digest, weight_view(weights));
  end_progress(flags);
  const FitResult& r = dr.fit;
  if (!root) return kOk;

  if (dr.resumed_after >= 0)
    note(flags, "note: resumed from checkpoint " + d.checkpoint + " after " + std::to_string(dr.resumed_after) +
                    " iteration(s)");
  for (const std::string& n : r.notices) note(flags, "note: " + n);
  if (r.n_decreases > 0)
    note(flags, "warning: the log-likelihood fell " + std::to_string(r.n_decreases) + " time(s), by up to " +
                    std::to_string(r.max_decrease) + "; EM forbids this: please report it");
  if (!r.converged)
    note(flags, "warning: did not converge in " + std::to_string(o.max_iter) +
                    " iterations; raise --max-iter or --tol, or check the data's scale");
  const double n = total_weight;  // the data's size for bic: sum w with weights, as cuem fit's
  const double p = n_parameters(r.model);
  const double bic = -2.0 * dr.score * n + p * std::log(n);
  const double aic = -2.0 * dr.score * n + 2.0 * p;
  io::FitMetadata meta{true, r.converged, r.n_iter, r.lower_bound, n_rows, data_name, {}};
  if (table.named_columns) meta.feature_names = io::usable_feature_names(table.column_names);
  io::OutputBatch outputs;
  if (!output.empty()) outputs.add(output, io::model_to_json(r.model, meta));
  if (!trace.empty()) outputs.add(trace, trace_csv(r.trace));
  outputs.commit();
  if (flags.json) {
    nlohmann::json j = {{"converged", r.converged},   {"n_iter", r.n_iter},        {"lower_bound", r.lower_bound},
                        {"score", dr.score},          {"bic", bic},                {"aic", aic},
                        {"n_samples", n_rows},        {"n_features", table.cols},  {"best_init", r.best_init},
                        {"n_decreases", r.n_decreases}, {"device", r.device},       {"ranks", comm.size()},
                        {"reduction", d.reduction},   {"resumed_after", dr.resumed_after}};
    if (!weights.empty()) j["sum_weights"] = total_weight;
    add_convergence_json(j, r, o.acceleration);
    print_fit_json(j, output, io::model_to_json(r.model, meta));
    return kOk;
  }
  std::printf("%s after %d iterations (restart %d of %d); lower bound (mean log-likelihood) %.10g\n",
              r.converged ? "converged" : "NOT converged", r.n_iter, r.best_init + 1, o.n_init, r.lower_bound);
  std::printf("BIC %.10g  AIC %.10g\n", bic, aic);
  if (!weights.empty()) std::printf("weights from %s, sum %.10g\n", io::display_name(weights_path).c_str(), total_weight);
  std::printf("distributed: %s\n", r.device.c_str());
  std::printf("%s", convergence_text(r, o.acceleration).c_str());
  if (output.empty()) {
    std::printf("\n%s", model_text(r.model, table.named_columns ? table.column_names : std::vector<std::string>{}).c_str());
  } else {
    std::printf("model written to %s\n", output.c_str());
  }
  if (!trace.empty()) std::printf("trace written to %s\n", trace.c_str());
  return kOk;
}

// cuem fit DATA --model hmm --distributed: every rank reads the whole --lengths file, the
// units are the sequences starting in each window of --segment-rows rows, and each rank
// keeps the rows of its units.
int run_hmm_on_rank(mpi::Communicator& comm, const DataArgs& data, const std::string& lengths_path,
                    const FitArgs& fit_args, const std::string& output, const std::string& trace,
                    const DistributedArgs& d, GlobalFlags flags,
                    const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv, int n_mix) {
  const bool root = comm.rank() == 0;
  if (!root) flags.quiet = true;
  if (!data.missing.empty() && data.missing != "error")
    throw UsageError("--missing marginalize is not distributed: a distributed fit needs complete frames");
  HmmOptions o = hmm_options(fit_args, data);
  if (n_mix > 0) gmm_hmm_options(o, n_mix);  // its refusals before any work
  const mpi::DistributedOptions options = distributed_options(d);
  if (io::is_stdin_name(lengths_path))
    throw UsageError("--distributed reads DATA and --lengths from files every rank can open, not '-'");
  check_outputs_on_root(comm, [&] {
    check_model_output_name(output, "-o");
    check_outputs({output, trace, d.checkpoint}, {data.path, lengths_path});
  });

  std::vector<std::size_t> offsets;
  RankData rank_data;
  load_rank_data(
      comm, data, flags,
      [&](std::size_t n) {
        offsets = engine::sequence_offsets(load_lengths(lengths_path, n), n);
        return mpi::sequence_units(offsets, d.segment_rows, comm.size());
      },
      rank_data);
  const mpi::SegmentLayout& layout = rank_data.layout;
  const std::string data_name = io::display_name(data.path);
  const std::size_t n_sequences = offsets.size() - 1;
  note(flags, data_name + ": " + std::to_string(layout.n_rows) + " frames x " +
                  std::to_string(rank_data.shards.front().cols) + " features in " + std::to_string(n_sequences) +
                  (n_sequences == 1 ? " sequence" : " sequences") + ", " + std::to_string(layout.segments()) +
                  " unit(s) over " + std::to_string(comm.size()) + " rank(s)");

  o.on_iteration = progress_reporter(flags, o.n_iter, o.n_init, "HMM");
  HmmFitResult r;
  std::string model_json;
  long resumed_after = -1;
  io::HmmFitMetadata meta{true, false, 0, 0.0, layout.n_rows, n_sequences, data_name};
  if (n_mix > 0) {
    mpi::DistributedGmmHmmResult dr = mpi::fit_gmm_hmm_distributed(comm, rank_data.rows, layout, offsets,
                                                                   gmm_hmm_options(o, n_mix), options, rank_data.digest);
    meta.converged = dr.fit.converged;
    meta.n_iter = dr.fit.n_iter;
    meta.lower_bound = dr.fit.lower_bound;
    if (root) model_json = io::gmm_hmm_model_to_json(dr.fit.model, meta);
    resumed_after = dr.resumed_after;
    r = as_hmm_report(std::move(dr.fit));
  } else {
    mpi::DistributedHmmResult dr =
        mpi::fit_hmm_distributed(comm, rank_data.rows, layout, offsets, o, options, rank_data.digest);
    meta.converged = dr.fit.converged;
    meta.n_iter = dr.fit.n_iter;
    meta.lower_bound = dr.fit.lower_bound;
    if (root) model_json = io::hmm_model_to_json(dr.fit.model, meta);
    resumed_after = dr.resumed_after;
    r = std::move(dr.fit);
  }
  end_progress(flags);
  if (!root) return kOk;
  if (resumed_after >= 0)
    note(flags, "note: resumed from checkpoint " + d.checkpoint + " after " + std::to_string(resumed_after) +
                    " iteration(s)");
  return report_hmm_fit(r, o, n_mix, model_json, layout.n_rows, n_sequences, output, trace, trace_csv, flags,
                        {{"ranks", comm.size()}, {"reduction", d.reduction}, {"resumed_after", resumed_after}});
}

// What main() prints before an error's message (src/cli/main.cpp), by the error's type.
std::string error_prefix(const std::exception& e) {
  if (dynamic_cast<const DataError*>(&e)) return "bad input data: ";
  if (dynamic_cast<const NumericalError*>(&e)) return "numerical failure: ";
  if (dynamic_cast<const DeviceError*>(&e)) return "device error: ";
  return "";
}

// One message for the job: rank 0 prints the error as main() would, every rank waits for
// that, then all but nothing reaches stderr (main's own print included). Without the wait
// another rank could exit first, and mpirun would end rank 0 before it spoke.
void report_once(const mpi::Communicator& comm, const std::exception& e) {
  if (comm.rank() == 0) {
    std::fprintf(stderr, "cuem: %s%s\n", error_prefix(e).c_str(), e.what());
    if (dynamic_cast<const UsageError*>(&e)) std::fprintf(stderr, "Run with --help for more information.\n");
  }
  std::fflush(stderr);
  try {
    comm.barrier();
  } catch (const std::exception&) {
    // A rank that is gone: the job is ending anyway.
  }
  if (!std::freopen("/dev/null", "w", stderr)) std::fclose(stderr);
}

// `body` on this rank, its failures said once for the whole job.
int on_every_rank(const std::function<int(mpi::Communicator&)>& body) {
  mpi::Communicator comm(nullptr, nullptr);
  try {
    return body(comm);
  } catch (const mpi::AgreedFailure& agreed) {
    try {
      agreed.rethrow_typed();
    } catch (const std::exception& e) {
      report_once(comm, e);
      throw;
    }
  } catch (const Error& e) {
    // The library's errors outside the collectives come from the work every rank does
    // alike (options, the M-step), so every rank raises the same one.
    report_once(comm, e);
    throw;
  } catch (const UsageError& e) {
    report_once(comm, e);
    throw;
  } catch (const std::exception& e) {
    // Anything else may be this rank's alone: the others could wait for it forever.
    comm.abort(e.what(), kInternal);
  }
}

}  // namespace

int run_distributed_fit(const std::function<void()>& check, const DataArgs& data, const std::string& weights,
                        const FitArgs& fit, const std::string& output, const std::string& trace,
                        const DistributedArgs& d, const GlobalFlags& flags,
                        const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv) {
  return on_every_rank([&](mpi::Communicator& comm) {
    check();
    return run_on_rank(comm, data, weights, fit, output, trace, d, flags, trace_csv);
  });
}

int run_distributed_hmm_fit(const std::function<void()>& check, const DataArgs& data, const std::string& lengths,
                            const FitArgs& fit, const std::string& output, const std::string& trace,
                            const DistributedArgs& d, const GlobalFlags& flags,
                            const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv, int n_mix) {
  return on_every_rank([&](mpi::Communicator& comm) {
    check();
    return run_hmm_on_rank(comm, data, lengths, fit, output, trace, d, flags, trace_csv, n_mix);
  });
}

}  // namespace cuem::cli
