// Training speed of the student's C++ trainer (libstudent_torch.so) on
// fixed-shape random token batches, for tests/bench/student_train.sh to set
// beside the same model in PyTorch (student_train_torch.py). Prints one
// JSON line: steps, tokens per second, peak RSS.
//   student_train_bench LIBSTUDENT_TORCH --vocab V --layers L --d-model D --heads H --kv-heads K --ffn F
//                       --seq T --batch B --steps N --threads N
#include <CLI/CLI.hpp>
#include <dlfcn.h>
#include <sys/resource.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "student.h"

using namespace distill::student;

int main(int argc, char** argv) {
  CLI::App app{"student training benchmark"};
  std::string library;
  ModelShape shape;
  int seq = 64, steps = 50;
  TrainSettings settings;
  app.add_option("library", library)->required();
  app.add_option("--vocab", shape.vocab_size)->required();
  app.add_option("--layers", shape.layers)->required();
  app.add_option("--d-model", shape.d_model)->required();
  app.add_option("--heads", shape.heads)->required();
  app.add_option("--kv-heads", shape.kv_heads)->required();
  app.add_option("--ffn", shape.ffn)->required();
  app.add_option("--seq", seq);
  app.add_option("--batch", settings.batch_size);
  app.add_option("--steps", steps);
  app.add_option("--threads", settings.threads);
  CLI11_PARSE(app, argc, argv);
  shape.max_seq = seq + 1;

  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    std::cerr << dlerror() << "\n";
    return 1;
  }
  auto entry = reinterpret_cast<const TorchBackend* (*)()>(dlsym(handle, DISTILL_STUDENT_TORCH_ENTRY));
  if (!entry) return 1;

  std::mt19937 rng(1);
  std::vector<Example> examples(static_cast<std::size_t>(settings.batch_size * steps));
  for (Example& e : examples) {
    e.tokens.resize(static_cast<std::size_t>(seq + 1));
    for (auto& t : e.tokens) t = static_cast<std::int32_t>(rng() % static_cast<unsigned>(shape.vocab_size));
    e.response_start = 1;
  }
  settings.epochs = 1;
  settings.warmup_steps = 10;
  settings.eval_every_steps = 0;
  settings.checkpoint_every_steps = 0;
  TrainHooks hooks;
  hooks.cancelled = [] { return false; };
  hooks.progress = [](std::int64_t, std::int64_t) {};
  hooks.gauge = [](std::string_view, double) {};
  hooks.log = [](const std::string&) {};
  hooks.evaluated = [](const EvalResult&) {};
  hooks.decode = [](const std::vector<std::int32_t>&) { return std::string(); };
  const TrainResult result = entry()->train(shape, settings, examples, {}, {}, "/tmp", "", hooks);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << nlohmann::json({{"steps", result.steps},
                               {"tokens_per_s", result.tokens_per_s},
                               {"peak_rss_mb", static_cast<double>(usage.ru_maxrss) / 1024.0}})
                   .dump()
            << "\n";
  return 0;
}
