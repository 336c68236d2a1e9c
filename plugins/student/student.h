// The student trainer's torch-free interface: training examples, settings,
// the hooks through which training reports to the pipeline, and the
// TorchBackend implemented with libtorch (model.cpp: the Llama model,
// weights and generation; trainer.cpp: the training loop). The rest of the
// plugin includes this header, never <torch/torch.h>, so only two
// translation units pay libtorch's compile time.
//
// The libtorch half is a shared library of its own, libstudent_torch.so
// beside the plugin, loaded with RTLD_LOCAL: Debian's libsentencepiece
// exports the protobuf 3.14 it bundles, libtorch loads libprotobuf 3.21,
// and in one symbol lookup scope each calls into the other and crashes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export.h"

namespace distill::student {

// The teacher's distribution at one response position, over student token
// ids: the alternatives that are one student token, and the rest of the
// mass (alternatives outside the top-k or not one student token).
struct SoftTarget {
  std::int32_t position = 0;  // index in Example::tokens of the token this distribution predicts
  std::vector<std::int32_t> ids;
  std::vector<float> probs;
  float rest = 0;
};

// One training sequence: BOS, the prompt in the chat template, the
// response and EOS. The loss covers tokens[response_start..].
struct Example {
  std::vector<std::int32_t> tokens;
  std::int32_t response_start = 0;
  std::vector<SoftTarget> soft;  // by position; empty when the record has no usable logprobs
};

// A held-out prompt whose greedy answer is compared with the teacher's.
struct EvalPrompt {
  std::vector<std::int32_t> prompt;  // BOS, prompt, assistant marker
  std::string reference;             // the teacher's answer
};

struct TrainSettings {
  int epochs = 20;
  int batch_size = 64;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // the cosine schedule ends at lr * min_lr_ratio
  int warmup_steps = 100;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  std::uint64_t seed = 1;
  unsigned threads = 2;
  double kd_alpha = 0.5;        // loss = (1 - alpha) * CE + alpha * KD where KD applies
  double kd_temperature = 1.0;
  bool kd = false;              // use the soft targets
  int eval_every_steps = 200;   // 0: only at the end
  int checkpoint_every_steps = 500;
  int eval_max_new_tokens = 64;
  std::int32_t pad_id = 0;  // fills batches; never a target
  std::int32_t eos_id = 2;  // ends a greedy answer
};

struct EvalResult {
  std::int64_t step = 0;
  double loss = 0;        // mean cross-entropy per held-out response token
  double perplexity = 0;
  double exact_match = 0;  // share of held-out prompts answered exactly as the teacher did
  std::int64_t prompts = 0;
};

// How training reaches the pipeline (all set by the caller).
struct TrainHooks {
  std::function<bool()> cancelled;
  std::function<void(std::int64_t step, std::int64_t total)> progress;
  std::function<void(std::string_view name, double value)> gauge;
  std::function<void(const std::string& message)> log;
  // The checkpoint of `step` is durable on disk: record it (and commit).
  std::function<void(std::int64_t step, const std::filesystem::path& file)> checkpointed;
  std::function<void(const EvalResult&)> evaluated;
  std::function<std::string(const std::vector<std::int32_t>& ids)> decode;
};

struct TrainResult {
  bool completed = false;  // false: cancelled; the last checkpoint stands
  std::int64_t steps = 0;
  EvalResult final_eval;
  double tokens_per_s = 0;  // training tokens (prompt and response, padding excluded) per second
  std::vector<NamedTensor> weights;  // Hugging Face names and layout; set when completed
};

struct SamplingOptions {
  int max_new_tokens = 64;
  double temperature = 0;  // 0: greedy
  double top_p = 1;
  std::uint64_t seed = 1;
};

// A trained student held in memory for generation (a KV cache per call).
class Generator {
 public:
  virtual ~Generator() = default;
  // The tokens that follow `prompt`, up to and excluding `eos`.
  virtual std::vector<std::int32_t> generate(const std::vector<std::int32_t>& prompt, std::int32_t eos,
                                             const SamplingOptions& options) const = 0;
  // Next-token logits at every position of `tokens` ([tokens.size()][vocab]).
  virtual std::vector<std::vector<float>> logits(const std::vector<std::int32_t>& tokens) const = 0;
};

// Which BLAS libtorch runs on, and a start-up matmul's speed (GFLOP/s).
struct BlasReport {
  std::string library;
  double gflops = 0;
};

class TorchBackend {
 public:
  virtual ~TorchBackend() = default;
  // Trains from the checkpoint `resume_from` (empty: from the seed) up to
  // epochs * ceil(train/batch_size) steps, writing checkpoints into
  // checkpoint_dir. The same data, settings, seed and thread count give the
  // same weights whether or not training was interrupted and resumed.
  virtual TrainResult train(const ModelShape& shape, const TrainSettings& settings,
                            const std::vector<Example>& train_set, const std::vector<Example>& holdout,
                            const std::vector<EvalPrompt>& eval_prompts, const std::filesystem::path& checkpoint_dir,
                            const std::filesystem::path& resume_from, const TrainHooks& hooks) const = 0;
  virtual std::unique_ptr<Generator> generator(const ModelShape& shape, const std::vector<NamedTensor>& weights,
                                               unsigned threads) const = 0;
  virtual BlasReport check_blas(unsigned threads) const = 0;
};

// libstudent_torch.so's backend, loaded on first use from the plugin's
// folder; throws std::runtime_error naming the file when it cannot be loaded.
const TorchBackend& torch_backend();

// The symbol libstudent_torch.so exports.
#define DISTILL_STUDENT_TORCH_ENTRY "distill_student_torch_backend"

}  // namespace distill::student
