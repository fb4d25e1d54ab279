// The cuem command line. Each command lives in its own cmd_*.cpp; this file wires them
// up and turns every failure into a message and a distinct exit code:
//   0 ok, 2 usage error, 3 bad input data, 4 numerical failure, 5 device error, 6 an input
//   file changed while it was read.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <new>

#include "cli/cmd_hmm.hpp"
#include "cli/common.hpp"
#include "cuem/errors.hpp"
#include "cuem/version.hpp"
#include "io/atomic_file.hpp"
#include "io/input_changed.hpp"
#include "io/io_error.hpp"

namespace {

constexpr const char* kFooter =
    "\nExit codes: 0 ok, 2 usage error (including an unwritable output path), 3 bad input data,\n"
    "4 numerical failure, 5 device error, 6 an input file changed while it was read, 130 interrupted\n"
    "(no output is left behind).\n"
    "Run 'cuem COMMAND --help' for a command's options.";

}  // namespace

namespace cuem::cli {
void add_fit_online_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);  // cmd_fit_online.cpp
}

int main(int argc, char** argv) {
  using namespace cuem::cli;
  cuem::io::install_interrupt_cleanup();

  CLI::App app{"cuem: Gaussian mixture models fitted with EM (CPU float64 reference; CUDA when present)", "cuem"};
  app.footer(kFooter);
  app.require_subcommand(1);
  // Every error starts with "cuem: ", CLI11's own too.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("cuem: ") + e.what() + "\nRun with --help for more information.\n";
  });
  app.set_version_flag("--version", std::string("cuem ") + cuem::version());
  GlobalFlags flags;
  app.add_flag("-q,--quiet", flags.quiet, "print no progress or notices on stderr");
  app.add_flag("--json", flags.json, "print results as JSON on stdout");
  int exit_code = kOk;
  add_fit_command(app, flags, exit_code);
  add_fit_online_command(app, flags, exit_code);
  add_predict_command(app, flags, exit_code);
  add_score_command(app, flags, exit_code);
  add_impute_command(app, flags, exit_code);
  add_sample_command(app, flags, exit_code);
  add_select_command(app, flags, exit_code);
  add_info_command(app, flags, exit_code);
  add_generate_command(app, flags, exit_code);
  add_decode_command(app, flags, exit_code);
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->footer(kFooter);
    // Global flags are accepted after the command name too.
    sub->add_flag("-q,--quiet", flags.quiet, "print no progress or notices on stderr");
    sub->add_flag("--json", flags.json, "print results as JSON on stdout");
    // An empty value ('-o ""', an unset shell variable) is a mistake, never "not given":
    // without this, -o "" would print the model instead of writing a file.
    for (CLI::Option* opt : sub->get_options())
      if (opt->get_type_size() != 0)
        opt->check(CLI::Validator(
            [](std::string& value) { return value.empty() ? std::string("an empty value is not allowed") : std::string(); },
            "", "non-empty"));
  }

  try {
    // CLI11 reads an unknown command as a stray argument; name it instead.
    bool known = argc < 2 || argv[1][0] == '-';
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->get_name() == argv[1];
    if (!known)
      throw UsageError(std::string("unknown command '") + argv[1] +
                       "': use fit, predict, score, impute, sample, select, info, generate or decode");
    app.parse(argc, argv);
    return exit_code;
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version, or the error with a hint
    return code == 0 ? kOk : kUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "cuem: %s\nRun with --help for more information.\n", e.what());
    return kUsage;
  } catch (const cuem::io::OutputError& e) {
    std::fprintf(stderr, "cuem: %s\n", e.what());
    return kUsage;
  } catch (const cuem::InvalidArgument& e) {
    std::fprintf(stderr, "cuem: %s\n", e.what());
    return kUsage;
  } catch (const cuem::io::InputChangedError& e) {
    std::fprintf(stderr, "cuem: input changed: %s\n", e.what());
    return kInputChanged;
  } catch (const cuem::DataError& e) {
    std::fprintf(stderr, "cuem: bad input data: %s\n", e.what());
    return kBadData;
  } catch (const cuem::NumericalError& e) {
    std::fprintf(stderr, "cuem: numerical failure: %s\n", e.what());
    return kNumerical;
  } catch (const cuem::DeviceError& e) {
    std::fprintf(stderr, "cuem: device error: %s\n", e.what());
    return kDevice;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "cuem: out of memory: the data or the model does not fit in this machine's memory\n");
    return kBadData;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuem: internal error: %s (please report this)\n", e.what());
    return kInternal;
  }
}
