// The training loop: batches in a seeded order per epoch, cross-entropy on
// response tokens (sequence-level KD) mixed with a forward KL on the
// teacher's top-k where it covers a position (token-level KD), AdamW
// (adamw.h) with warmup and a cosine decay, gradient clipping, periodic
// evaluation, and checkpoints (weights, optimiser, step) from which a
// resumed run reaches the same weights as an uninterrupted one.
#include <chrono>
#include <cmath>
#include <future>
#include <random>
#include <sstream>

#include "adamw.h"
#include "atomic_file.h"
#include "model.h"
#include "tensor_memory.h"

namespace distill::student {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kIgnore = -100;

// The order of the examples in `epoch`: a Fisher-Yates shuffle drawn from
// the seed and the epoch alone, so a resumed run recomputes it exactly.
std::vector<std::size_t> epoch_order(std::size_t count, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::size_t> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = i;
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = count; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

double learning_rate(const TrainSettings& s, std::int64_t step, std::int64_t total) {
  if (step < s.warmup_steps) return s.lr * static_cast<double>(step + 1) / s.warmup_steps;
  const double span = std::max<std::int64_t>(1, total - s.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / span);
  const double floor = s.lr * s.min_lr_ratio;
  return floor + (s.lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// A padded batch: inputs [B, T], targets [B, T] (kIgnore outside
// responses), and the soft targets' rows in the flattened [B*T] logits.
struct Collated {
  torch::Tensor inputs, targets;
  torch::Tensor soft_rows, soft_ids, soft_probs, soft_rest;  // undefined when no soft target
  std::int64_t target_tokens = 0;
  std::int64_t input_tokens = 0;  // padding excluded
};

Collated collate(const std::vector<const Example*>& examples, std::int32_t pad_id) {
  std::int64_t width = 1;
  std::size_t soft_width = 0, soft_count = 0;
  for (const Example* e : examples) {
    width = std::max<std::int64_t>(width, static_cast<std::int64_t>(e->tokens.size()) - 1);
    soft_count += e->soft.size();
    for (const SoftTarget& s : e->soft) soft_width = std::max(soft_width, s.ids.size());
  }
  const auto rows = static_cast<std::int64_t>(examples.size());
  Collated c;
  c.inputs = torch::full({rows, width}, pad_id, torch::kLong);
  c.targets = torch::full({rows, width}, kIgnore, torch::kLong);
  auto inputs = c.inputs.accessor<std::int64_t, 2>();
  auto targets = c.targets.accessor<std::int64_t, 2>();
  std::vector<std::int64_t> soft_rows, soft_ids;
  std::vector<float> soft_probs, soft_rest;
  for (std::int64_t b = 0; b < rows; ++b) {
    const Example& e = *examples[static_cast<std::size_t>(b)];
    const auto length = static_cast<std::int64_t>(e.tokens.size());
    for (std::int64_t t = 0; t + 1 < length; ++t) inputs[b][t] = e.tokens[static_cast<std::size_t>(t)];
    c.input_tokens += std::max<std::int64_t>(0, length - 1);
    for (std::int64_t t = std::max<std::int64_t>(1, e.response_start); t < length; ++t) {
      targets[b][t - 1] = e.tokens[static_cast<std::size_t>(t)];
      ++c.target_tokens;
    }
    for (const SoftTarget& s : e.soft) {
      soft_rows.push_back(b * width + s.position - 1);
      for (std::size_t k = 0; k < soft_width; ++k) {
        soft_ids.push_back(k < s.ids.size() ? s.ids[k] : 0);
        soft_probs.push_back(k < s.ids.size() ? s.probs[k] : 0.0f);
      }
      soft_rest.push_back(s.rest);
    }
  }
  if (soft_count > 0) {
    const auto n = static_cast<std::int64_t>(soft_count), k = static_cast<std::int64_t>(soft_width);
    c.soft_rows = torch::tensor(soft_rows, torch::kLong);
    c.soft_ids = torch::tensor(soft_ids, torch::kLong).view({n, k});
    c.soft_probs = torch::tensor(soft_probs).view({n, k});
    c.soft_rest = torch::tensor(soft_rest);
  }
  return c;
}

// Forward KL(teacher || student) over the teacher's alternatives that are
// one student token plus one bucket for all other mass, times T^2, summed
// over the soft targets.
torch::Tensor kd_loss_sum(const torch::Tensor& logits, const Collated& c, double temperature) {
  const torch::Tensor rows = logits.view({-1, logits.size(-1)}).index_select(0, c.soft_rows);
  const torch::Tensor log_q = torch::log_softmax(rows / temperature, -1).gather(1, c.soft_ids);
  const torch::Tensor present = (c.soft_probs > 0).to(torch::kFloat);
  const torch::Tensor q_rest = torch::clamp_min(1.0 - (log_q.exp() * present).sum(1), 1e-6);
  const torch::Tensor p = c.soft_probs;
  const torch::Tensor known = (p * (torch::log(p.clamp_min(1e-12)) - log_q) * present).sum(1);
  const torch::Tensor rest = c.soft_rest * (torch::log(c.soft_rest.clamp_min(1e-12)) - torch::log(q_rest)) *
                             (c.soft_rest > 0).to(torch::kFloat);
  return (known + rest).sum() * (temperature * temperature);
}

torch::Tensor ce_loss(const torch::Tensor& logits, const torch::Tensor& targets, torch::nn::functional::CrossEntropyFuncOptions::reduction_t reduction) {
  return torch::nn::functional::cross_entropy(
      logits.view({-1, logits.size(-1)}), targets.view({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(reduction));
}

std::string trimmed(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

EvalResult evaluate(const Llama& model, const TrainSettings& s, const std::vector<Example>& holdout,
                    const std::vector<EvalPrompt>& prompts, const TrainHooks& hooks, std::int64_t step) {
  torch::NoGradGuard no_grad;
  EvalResult result;
  result.step = step;
  double loss_sum = 0;
  std::int64_t tokens = 0;
  for (std::size_t start = 0; start < holdout.size(); start += static_cast<std::size_t>(s.batch_size)) {
    std::vector<const Example*> batch;
    for (std::size_t i = start; i < std::min(holdout.size(), start + static_cast<std::size_t>(s.batch_size)); ++i)
      batch.push_back(&holdout[i]);
    const Collated c = collate(batch, s.pad_id);
    loss_sum += ce_loss(model.forward(c.inputs), c.targets, torch::kSum).item<double>();
    tokens += c.target_tokens;
  }
  result.loss = tokens ? loss_sum / static_cast<double>(tokens) : 0;
  result.perplexity = std::exp(result.loss);
  std::int64_t exact = 0;
  SamplingOptions greedy;
  greedy.max_new_tokens = s.eval_max_new_tokens;
  for (const EvalPrompt& prompt : prompts)
    if (trimmed(hooks.decode(generate(model, prompt.prompt, s.eos_id, greedy))) == trimmed(prompt.reference)) ++exact;
  result.prompts = static_cast<std::int64_t>(prompts.size());
  result.exact_match = prompts.empty() ? 0 : static_cast<double>(exact) / static_cast<double>(prompts.size());
  return result;
}

// AdamW's state: the two moments of every parameter (the update count is
// the training step); the arithmetic is adamw.h's.
struct Optimizer {
  std::vector<torch::Tensor> m, v;

  explicit Optimizer(const Llama& model) {
    for (const torch::Tensor& p : model.parameters()) {
      m.push_back(torch::zeros_like(p));
      v.push_back(torch::zeros_like(p));
    }
  }

  // Update number `count` (1 for the first) from the batch's gradients
  // (undefined for a parameter the loss did not reach, which is left
  // alone), clipped to the settings' norm: the gradients' sum of squares is
  // given by the caller.
  void step(const Llama& model, const std::vector<torch::Tensor>& grads, double sum_squares, double lr,
            std::int64_t count, const TrainSettings& s) {
    AdamWStep update;
    update.lr = lr;
    update.step = count;
    update.grad_scale = clip_scale(sum_squares, s.grad_clip);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) continue;
      update.weight_decay = model.decays(i) ? s.weight_decay : 0.0;
      const torch::Tensor& p = model.parameters()[i];
      adamw_update(p.data_ptr<float>(), grads[i].data_ptr<float>(), m[i].data_ptr<float>(), v[i].data_ptr<float>(),
                   static_cast<std::size_t>(p.numel()), update);
    }
  }
};

void save_checkpoint(const std::filesystem::path& file, const Llama& model, const Optimizer& optimizer,
                     std::int64_t step) {
  torch::serialize::OutputArchive archive;
  archive.write("step", torch::tensor(step, torch::kLong));
  for (std::size_t i = 0; i < model.parameters().size(); ++i) {
    archive.write("param_" + std::to_string(i), model.parameters()[i]);
    archive.write("adamw_m_" + std::to_string(i), optimizer.m[i]);
    archive.write("adamw_v_" + std::to_string(i), optimizer.v[i]);
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(file, bytes.str());
}

std::int64_t load_checkpoint(const std::filesystem::path& file, const Llama& model, Optimizer& optimizer) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
    torch::Tensor step;
    archive.read("step", step);
    torch::NoGradGuard no_grad;
    auto restore = [&archive](const std::string& key, const torch::Tensor& into) {
      torch::Tensor saved;
      archive.read(key, saved);
      if (!saved.sizes().equals(into.sizes())) throw std::runtime_error(key + " has another shape than the model's");
      into.copy_(saved);
    };
    for (std::size_t i = 0; i < model.parameters().size(); ++i) {
      restore("param_" + std::to_string(i), model.parameters()[i]);
      restore("adamw_m_" + std::to_string(i), optimizer.m[i]);
      restore("adamw_v_" + std::to_string(i), optimizer.v[i]);
    }
    return step.item<std::int64_t>();
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read the training checkpoint " + file.string() + ": " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot read the training checkpoint " + file.string() + ": " + e.what());
  }
}

// One training step's gradients, parameter by parameter. The batch is cut
// into `shards` runs of examples, each collated, run forward and backward
// on its own thread (the caller has set one BLAS/OpenMP thread per thread):
// at these model sizes two independent passes keep two cores busier than
// one pass whose every small operation is split in two. Each shard's loss
// is its sum over tokens divided by the whole batch's counts, so the
// shards' gradients, added in shard order, are the batch's gradient.
struct StepGradients {
  std::vector<torch::Tensor> grads;
  double sum_squares = 0;  // of all the gradients, for clipping
  double ce = 0, kd = 0;   // the batch's mean losses
  bool has_kd = false;
  std::int64_t input_tokens = 0;
};

StepGradients step_gradients(const Llama& model, const TrainSettings& s, const std::vector<const Example*>& examples,
                             std::size_t shards) {
  shards = std::max<std::size_t>(1, std::min(shards, examples.size()));
  std::vector<Collated> parts;
  for (std::size_t i = 0; i < shards; ++i) {
    const std::size_t begin = examples.size() * i / shards, end = examples.size() * (i + 1) / shards;
    parts.push_back(collate({examples.begin() + static_cast<std::ptrdiff_t>(begin),
                             examples.begin() + static_cast<std::ptrdiff_t>(end)},
                            s.pad_id));
  }
  StepGradients out;
  std::int64_t targets = 0, soft = 0;
  for (const Collated& c : parts) {
    targets += c.target_tokens;
    soft += c.soft_rows.defined() ? c.soft_rows.size(0) : 0;
    out.input_tokens += c.input_tokens;
  }
  out.has_kd = s.kd && soft > 0;
  const double ce_weight = (out.has_kd ? 1.0 - s.kd_alpha : 1.0) / static_cast<double>(std::max<std::int64_t>(1, targets));
  const double kd_weight = out.has_kd ? s.kd_alpha / static_cast<double>(soft) : 0.0;
  struct ShardResult {
    std::vector<torch::Tensor> grads;
    double ce_sum = 0, kd_sum = 0;
  };
  auto run = [&](const Collated& c) {
    ShardResult r;
    const torch::Tensor logits = model.forward(c.inputs);
    const torch::Tensor ce = ce_loss(logits, c.targets, torch::kSum);
    torch::Tensor loss = ce * ce_weight;
    r.ce_sum = ce.item<double>();
    if (out.has_kd && c.soft_rows.defined()) {
      const torch::Tensor kd = kd_loss_sum(logits, c, s.kd_temperature);
      loss = loss + kd * kd_weight;
      r.kd_sum = kd.item<double>();
    }
    r.grads = torch::autograd::grad({loss}, model.parameters(), {}, false, false, true);
    return r;
  };
  std::vector<std::future<ShardResult>> others;
  for (std::size_t i = 1; i < parts.size(); ++i) others.push_back(std::async(std::launch::async, run, std::cref(parts[i])));
  std::vector<ShardResult> results;
  results.push_back(run(parts[0]));
  for (auto& other : others) results.push_back(other.get());
  out.grads = std::move(results[0].grads);
  for (std::size_t p = 0; p < out.grads.size(); ++p) {
    std::vector<const float*> others;
    for (std::size_t i = 1; i < results.size(); ++i) {
      torch::Tensor& grad = results[i].grads[p];
      if (!grad.defined()) continue;
      if (!out.grads[p].defined()) {
        out.grads[p] = std::move(grad);
        continue;
      }
      grad = grad.contiguous();
      others.push_back(grad.data_ptr<float>());
    }
    if (!out.grads[p].defined()) continue;
    out.grads[p] = out.grads[p].contiguous();
    out.sum_squares += add_and_sum_squares(out.grads[p].data_ptr<float>(), others.data(), others.size(),
                                           static_cast<std::size_t>(out.grads[p].numel()));
  }
  for (const ShardResult& r : results) {
    out.ce += r.ce_sum;
    out.kd += r.kd_sum;
  }
  out.ce /= static_cast<double>(std::max<std::int64_t>(1, targets));
  if (out.has_kd) out.kd /= static_cast<double>(soft);
  return out;
}

}  // namespace

TrainResult train(const ModelShape& shape, const TrainSettings& s, const std::vector<Example>& train_set,
                  const std::vector<Example>& holdout, const std::vector<EvalPrompt>& eval_prompts,
                  const std::filesystem::path& checkpoint_dir, const std::filesystem::path& resume_from,
                  const TrainHooks& hooks) {
  if (train_set.empty()) throw std::runtime_error("no training examples");
  const TrainingMemory memory;
  // Training runs one shard of each batch per thread, each thread with one
  // BLAS/OpenMP thread; evaluation and generation use the threads within
  // each operation.
  const std::size_t shards = std::max(1u, s.threads);
  set_threads(1);
  Llama model(shape, s.seed);
  Optimizer optimizer(model);
  std::int64_t step = 0;
  if (!resume_from.empty()) {
    step = load_checkpoint(resume_from, model, optimizer);
    hooks.log("resumed training at step " + std::to_string(step) + " from " + resume_from.string());
  }
  const auto batch_size = static_cast<std::size_t>(s.batch_size);
  const auto per_epoch = static_cast<std::int64_t>((train_set.size() + batch_size - 1) / batch_size);
  const std::int64_t total = per_epoch * s.epochs;
  std::vector<std::size_t> order;
  std::int64_t order_epoch = -1;
  std::int64_t tokens = 0;
  double busy_s = 0;
  TrainResult result;
  while (step < total) {
    if (hooks.cancelled()) {
      result.steps = step;
      return result;
    }
    const auto t0 = Clock::now();
    if (step / per_epoch != order_epoch) {
      order_epoch = step / per_epoch;
      order = epoch_order(train_set.size(), s.seed, order_epoch);
    }
    const std::size_t first = static_cast<std::size_t>(step % per_epoch) * batch_size;
    std::vector<const Example*> examples;
    for (std::size_t i = first; i < std::min(order.size(), first + batch_size); ++i) examples.push_back(&train_set[order[i]]);

    const double lr = learning_rate(s, step, total);
    const StepGradients gradients = step_gradients(model, s, examples, shards);
    if (gradients.has_kd) hooks.gauge("train_kd", gradients.kd);
    optimizer.step(model, gradients.grads, gradients.sum_squares, lr, step + 1, s);
    ++step;

    tokens += gradients.input_tokens;
    busy_s += std::chrono::duration<double>(Clock::now() - t0).count();
    hooks.gauge("train_loss", gradients.ce);
    hooks.gauge("learning_rate", lr);
    hooks.gauge("tokens_per_s", static_cast<double>(tokens) / busy_s);
    hooks.progress(step, total);
    if (s.eval_every_steps > 0 && step % s.eval_every_steps == 0 && step < total) {
      set_threads(s.threads);
      hooks.evaluated(evaluate(model, s, holdout, eval_prompts, hooks, step));
      set_threads(1);
    }
    if (s.checkpoint_every_steps > 0 && step % s.checkpoint_every_steps == 0 && step < total) {
      char name[32];
      std::snprintf(name, sizeof name, "step-%08lld.pt", static_cast<long long>(step));
      save_checkpoint(checkpoint_dir / name, model, optimizer, step);
      hooks.checkpointed(step, checkpoint_dir / name);
    }
  }
  result.completed = true;
  result.steps = step;
  result.tokens_per_s = busy_s > 0 ? static_cast<double>(tokens) / busy_s : 0;
  set_threads(s.threads);
  result.final_eval = evaluate(model, s, holdout, eval_prompts, hooks, step);
  hooks.evaluated(result.final_eval);
  result.weights = model.weights();
  return result;
}

}  // namespace distill::student
