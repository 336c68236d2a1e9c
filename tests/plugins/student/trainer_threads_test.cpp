// The trainer's threads (libstudent_torch.so, loaded as the plugin loads
// it): a batch split across threads must train as the whole batch does on
// one thread (same losses step by step, cross-entropy and KD), and a run
// on several threads must be reproducible bit for bit.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "student.h"

namespace {

using namespace distill::student;

const TorchBackend& backend() {
  static const TorchBackend* loaded = [] {
    void* handle = dlopen(STUDENT_TORCH_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw std::runtime_error(dlerror());
    auto entry = reinterpret_cast<const TorchBackend* (*)()>(dlsym(handle, DISTILL_STUDENT_TORCH_ENTRY));
    if (!entry) throw std::runtime_error("no " DISTILL_STUDENT_TORCH_ENTRY);
    return entry();
  }();
  return *loaded;
}

// Not tiny_model's shape: that library links SentencePiece, whose bundled
// protobuf must stay out of a process that loads libtorch (student.h).
ModelShape shape() {
  ModelShape s;
  s.vocab_size = 64;
  s.layers = 2;
  s.d_model = 32;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 64;
  s.max_seq = 40;
  s.tie_embeddings = true;
  return s;
}

// Examples of uneven lengths (so each thread's part pads to its own width)
// with responses starting at different places and, on some, the teacher's
// top-3 at a few response positions.
std::vector<Example> examples(std::size_t count) {
  std::mt19937 rng(7);
  std::vector<Example> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    Example& e = out[i];
    e.tokens.resize(8 + rng() % 30);
    for (auto& t : e.tokens) t = 3 + static_cast<std::int32_t>(rng() % 61);
    e.response_start = 2 + static_cast<std::int32_t>(rng() % 5);
    if (i % 3 == 0)
      for (auto position = e.response_start; position < static_cast<std::int32_t>(e.tokens.size()); position += 3)
        e.soft.push_back({position, {e.tokens[static_cast<std::size_t>(position)], 5, 9}, {0.6f, 0.2f, 0.1f}, 0.1f});
  }
  return out;
}

struct TrainingRun {
  std::vector<double> train_loss, train_kd;
  std::vector<NamedTensor> weights;
};

TrainingRun train(unsigned threads) {
  TrainSettings s;
  s.epochs = 2;
  s.batch_size = 10;
  s.lr = 1e-2;
  s.warmup_steps = 1;
  s.threads = threads;
  s.kd = true;
  s.eval_every_steps = 0;
  s.checkpoint_every_steps = 0;
  TrainingRun run;
  TrainHooks hooks;
  hooks.cancelled = [] { return false; };
  hooks.progress = [](std::int64_t, std::int64_t) {};
  hooks.gauge = [&](std::string_view name, double value) {
    if (name == "train_loss") run.train_loss.push_back(value);
    if (name == "train_kd") run.train_kd.push_back(value);
  };
  hooks.log = [](const std::string&) {};
  hooks.checkpointed = [](std::int64_t, const std::filesystem::path&) {};
  hooks.evaluated = [](const EvalResult&) {};
  hooks.decode = [](const std::vector<std::int32_t>&) { return std::string(); };
  const TrainResult result =
      backend().train(shape(), s, examples(30), {}, {}, testing::TempDir(), "", hooks);
  EXPECT_TRUE(result.completed);
  run.weights = result.weights;
  return run;
}

void expect_close(const std::vector<double>& expected, const std::vector<double>& actual, const char* what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(expected[i], actual[i], 1e-4 * std::abs(expected[i])) << what << " at step " << i + 1;
}

TEST(TrainerThreads, ABatchSplitAcrossThreadsTrainsAsTheWholeBatch) {
  const TrainingRun one = train(1);
  ASSERT_EQ(one.train_loss.size(), 6u);
  ASSERT_EQ(one.train_kd.size(), 6u);
  for (unsigned threads : {2u, 3u}) {
    const TrainingRun split = train(threads);
    expect_close(one.train_loss, split.train_loss, threads == 2 ? "cross-entropy, 2 threads" : "cross-entropy, 3 threads");
    expect_close(one.train_kd, split.train_kd, threads == 2 ? "KD, 2 threads" : "KD, 3 threads");
  }
}

TEST(TrainerThreads, ARunOnSeveralThreadsIsReproducible) {
  const TrainingRun first = train(2), second = train(2);
  ASSERT_EQ(first.weights.size(), second.weights.size());
  for (std::size_t i = 0; i < first.weights.size(); ++i)
    EXPECT_EQ(first.weights[i].data, second.weights[i].data) << first.weights[i].name;
}

}  // namespace
