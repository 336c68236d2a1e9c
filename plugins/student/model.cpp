// The Llama-layout student: weights, RMSNorm, rotary positions (Hugging
// Face's rotate_half convention), grouped-query attention and the SwiGLU
// MLP; the cached forward pass and sampling behind Generator; thread and
// BLAS set-up; and the TorchBackend that libstudent_torch.so exports.
#include "model.h"
#include "kernels.h"

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace distill::student {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows of a tensor's last dimension, and the block of rows one thread takes
// in at::parallel_for (the forward passes also run in evaluation, on all
// threads; training runs each shard on one).
std::int64_t rows_of(const torch::Tensor& x) { return x.numel() / x.size(-1); }
constexpr std::int64_t kRowsPerTask = 64;

// kernels.h's RMSNorm as one autograd operation.
struct RmsNorm : torch::autograd::Function<RmsNorm> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               double eps) {
    const torch::Tensor x = input.contiguous();
    const std::int64_t width = x.size(-1), rows = rows_of(x);
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor inv_rms = torch::empty({rows});
    at::parallel_for(0, rows, kRowsPerTask, [&](std::int64_t begin, std::int64_t end) {
      rms_norm_forward(x.data_ptr<float>() + begin * width, weight.data_ptr<float>(),
                       static_cast<std::size_t>(end - begin), static_cast<std::size_t>(width),
                       static_cast<float>(eps), y.data_ptr<float>() + begin * width, inv_rms.data_ptr<float>() + begin);
    });
    ctx->save_for_backward({x, weight, inv_rms});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dx = torch::empty_like(x);
    torch::Tensor dw = torch::zeros_like(saved[1]);
    rms_norm_backward(dy.data_ptr<float>(), x.data_ptr<float>(), saved[1].data_ptr<float>(),
                      saved[2].data_ptr<float>(), static_cast<std::size_t>(rows_of(x)),
                      static_cast<std::size_t>(x.size(-1)), dx.data_ptr<float>(), dw.data_ptr<float>());
    return {dx, dw, torch::Tensor()};
  }
};

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return RmsNorm::apply(x, weight, eps);
}

// kernels.h's rotary positions: a projection's output [B, T, heads * dim]
// in, [B, heads, T, dim] out, times `scale`; cos and sin are the rows of
// the positions (contiguous [T, dim]).
struct Rope : torch::autograd::Function<Rope> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& cos,
                               const torch::Tensor& sin, std::int64_t heads, double scale) {
    const torch::Tensor x = input.contiguous();
    const RopeShape shape{static_cast<std::size_t>(x.size(0)), static_cast<std::size_t>(x.size(1)),
                          static_cast<std::size_t>(heads), static_cast<std::size_t>(x.size(2) / heads)};
    torch::Tensor y = torch::empty({x.size(0), heads, x.size(1), x.size(2) / heads});
    rope_forward(x.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), shape, static_cast<float>(scale),
                 y.data_ptr<float>());
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["scale"] = scale;
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor dy = grads[0].contiguous();
    const std::int64_t heads = ctx->saved_data["heads"].toInt();
    const RopeShape shape{static_cast<std::size_t>(dy.size(0)), static_cast<std::size_t>(dy.size(2)),
                          static_cast<std::size_t>(heads), static_cast<std::size_t>(dy.size(3))};
    torch::Tensor dx = torch::empty({dy.size(0), dy.size(2), heads * dy.size(3)});
    rope_backward(dy.data_ptr<float>(), saved[0].data_ptr<float>(), saved[1].data_ptr<float>(), shape,
                  static_cast<float>(ctx->saved_data["scale"].toDouble()), dx.data_ptr<float>());
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// kernels.h's SwiGLU: silu(gate) * up as one autograd operation.
struct SwiGlu : torch::autograd::Function<SwiGlu> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_input, const torch::Tensor& up_input) {
    const torch::Tensor gate = gate_input.contiguous(), up = up_input.contiguous();
    torch::Tensor out = torch::empty_like(gate);
    const std::int64_t width = gate.size(-1);
    at::parallel_for(0, rows_of(gate), kRowsPerTask, [&](std::int64_t begin, std::int64_t end) {
      swiglu_forward(gate.data_ptr<float>() + begin * width, up.data_ptr<float>() + begin * width,
                     static_cast<std::size_t>((end - begin) * width), out.data_ptr<float>() + begin * width);
    });
    ctx->save_for_backward({gate, up});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor dout = grads[0].contiguous();
    torch::Tensor dgate = torch::empty_like(saved[0]), dup = torch::empty_like(saved[1]);
    swiglu_backward(dout.data_ptr<float>(), saved[0].data_ptr<float>(), saved[1].data_ptr<float>(),
                    static_cast<std::size_t>(dout.numel()), dgate.data_ptr<float>(), dup.data_ptr<float>());
    return {dgate, dup};
  }
};

// Additive mask for `fresh` new positions after `past` cached ones: a
// position sees every earlier one and itself.
torch::Tensor causal_mask(std::int64_t fresh, std::int64_t past) {
  return torch::full({fresh, past + fresh}, -std::numeric_limits<float>::infinity()).triu(past + 1);
}

using OpenblasSetThreads = void (*)(int);
using OpenblasConfig = char* (*)();

}  // namespace

Llama::Llama(const ModelShape& shape, std::uint64_t seed) : shape_(shape), head_dim_(shape.d_model / shape.heads) {
  torch::manual_seed(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * shape.layers);
  declare([&](const std::string& name, std::vector<std::int64_t> sizes) {
    if (sizes.size() == 1) return torch::ones(sizes);
    const bool residual = name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight");
    return torch::randn(sizes) * (residual ? residual_std : 0.02);
  });
}

Llama::Llama(const ModelShape& shape, const std::vector<NamedTensor>& weights)
    : shape_(shape), head_dim_(shape.d_model / shape.heads) {
  declare([&](const std::string& name, std::vector<std::int64_t> sizes) {
    for (const NamedTensor& w : weights)
      if (w.name == name) {
        if (w.shape != sizes) throw std::runtime_error("weight " + name + " has the wrong shape for this model");
        return torch::from_blob(const_cast<float*>(w.data.data()), sizes, torch::kFloat).clone();
      }
    throw std::runtime_error("weight " + name + " is missing");
  });
}

void Llama::declare(const std::function<torch::Tensor(const std::string&, std::vector<std::int64_t>)>& make) {
  const std::int64_t d = shape_.d_model, v = shape_.vocab_size, f = shape_.ffn;
  const std::int64_t q_rows = shape_.heads * head_dim_, kv_rows = shape_.kv_heads * head_dim_;
  auto add = [&](const std::string& name, std::vector<std::int64_t> sizes) {
    torch::Tensor t = make(name, std::move(sizes)).contiguous().set_requires_grad(true);
    params_.push_back(t);
    names_.push_back(name);
    return t;
  };
  embed_ = add("model.embed_tokens.weight", {v, d});
  for (int i = 0; i < shape_.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer layer;
    layer.attn_norm = add(p + "input_layernorm.weight", {d});
    layer.q = add(p + "self_attn.q_proj.weight", {q_rows, d});
    layer.k = add(p + "self_attn.k_proj.weight", {kv_rows, d});
    layer.v = add(p + "self_attn.v_proj.weight", {kv_rows, d});
    layer.o = add(p + "self_attn.o_proj.weight", {d, q_rows});
    layer.ffn_norm = add(p + "post_attention_layernorm.weight", {d});
    layer.gate = add(p + "mlp.gate_proj.weight", {f, d});
    layer.up = add(p + "mlp.up_proj.weight", {f, d});
    layer.down = add(p + "mlp.down_proj.weight", {d, f});
    layers_.push_back(layer);
  }
  norm_ = add("model.norm.weight", {d});
  lm_head_ = shape_.tie_embeddings ? embed_ : add("lm_head.weight", {v, d});

  torch::NoGradGuard no_grad;
  const torch::Tensor inv_freq =
      1.0 / torch::pow(shape_.rope_theta, torch::arange(0, head_dim_, 2, torch::kDouble) / static_cast<double>(head_dim_));
  const torch::Tensor freqs = torch::outer(torch::arange(shape_.max_seq, torch::kDouble), inv_freq);
  const torch::Tensor angles = torch::cat({freqs, freqs}, -1);
  cos_ = angles.cos().to(torch::kFloat);
  sin_ = angles.sin().to(torch::kFloat);
}

torch::Tensor Llama::rope(const torch::Tensor& projected, std::int64_t start, std::int64_t heads, double scale) const {
  const std::int64_t length = projected.size(1);
  if (start + length > shape_.max_seq)
    throw std::runtime_error("sequence of " + std::to_string(start + length) + " tokens is longer than max_seq " +
                             std::to_string(shape_.max_seq));
  return Rope::apply(projected, cos_.slice(0, start, start + length), sin_.slice(0, start, start + length), heads,
                     scale);
}

torch::Tensor Llama::block(const Layer& layer, torch::Tensor x, std::int64_t start, const torch::Tensor& mask,
                           Cache* cache, std::size_t index) const {
  const std::int64_t batch = x.size(0), length = x.size(1);
  const torch::Tensor h = rms_norm(x, layer.attn_norm, shape_.rms_eps);
  // The attention's 1/sqrt(head_dim) is applied to q with its rotation.
  const torch::Tensor q = rope(torch::linear(h, layer.q), start, shape_.heads, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
  torch::Tensor k = rope(torch::linear(h, layer.k), start, shape_.kv_heads, 1.0);
  torch::Tensor v = torch::linear(h, layer.v).view({batch, length, shape_.kv_heads, head_dim_}).transpose(1, 2);
  if (cache) {
    if (cache->keys.size() > index) {
      k = torch::cat({cache->keys[index], k}, 2);
      v = torch::cat({cache->values[index], v}, 2);
      cache->keys[index] = k;
      cache->values[index] = v;
    } else {
      cache->keys.push_back(k);
      cache->values.push_back(v);
    }
  }
  if (shape_.kv_heads < shape_.heads) {
    const std::int64_t repeat = shape_.heads / shape_.kv_heads;
    k = k.repeat_interleave(repeat, 1);
    v = v.repeat_interleave(repeat, 1);
  }
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));
  if (mask.defined()) scores = scores + mask;
  const torch::Tensor attended =
      torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({batch, length, shape_.heads * head_dim_});
  x = x + torch::linear(attended, layer.o);
  const torch::Tensor g = rms_norm(x, layer.ffn_norm, shape_.rms_eps);
  return x + torch::linear(SwiGlu::apply(torch::linear(g, layer.gate), torch::linear(g, layer.up)), layer.down);
}

torch::Tensor Llama::forward(const torch::Tensor& tokens) const {
  torch::Tensor x = torch::embedding(embed_, tokens);
  const torch::Tensor mask = tokens.size(1) > 1 ? causal_mask(tokens.size(1), 0) : torch::Tensor();
  for (std::size_t i = 0; i < layers_.size(); ++i) x = block(layers_[i], x, 0, mask, nullptr, i);
  return torch::linear(rms_norm(x, norm_, shape_.rms_eps), lm_head_);
}

torch::Tensor Llama::step(const torch::Tensor& tokens, Cache& cache) const {
  const std::int64_t fresh = tokens.size(1);
  torch::Tensor x = torch::embedding(embed_, tokens);
  const torch::Tensor mask = fresh > 1 ? causal_mask(fresh, cache.length) : torch::Tensor();
  for (std::size_t i = 0; i < layers_.size(); ++i) x = block(layers_[i], x, cache.length, mask, &cache, i);
  cache.length += fresh;
  const torch::Tensor last = x.select(1, fresh - 1);
  return torch::linear(rms_norm(last, norm_, shape_.rms_eps), lm_head_).squeeze(0);
}

std::vector<NamedTensor> Llama::weights() const {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor t = params_[i].detach().contiguous();
    const float* data = t.data_ptr<float>();
    out.push_back({names_[i], t.sizes().vec(), std::vector<float>(data, data + t.numel())});
  }
  return out;
}

void set_threads(unsigned threads) {
  torch::set_num_threads(static_cast<int>(threads));
  if (auto set = reinterpret_cast<OpenblasSetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(static_cast<int>(threads));
}

namespace {

BlasReport measure_blas(unsigned threads) {
  set_threads(threads);
  BlasReport report;
  if (auto config = reinterpret_cast<OpenblasConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
    report.library = std::string("OpenBLAS (") + config() + ")";
  else
    report.library = "not OpenBLAS (probably the reference BLAS: apt-get install libopenblas0-pthread)";
  torch::NoGradGuard no_grad;
  const torch::Tensor a = torch::ones({512, 512});
  torch::Tensor c = torch::mm(a, a);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kRepeats = 4;
  for (int i = 0; i < kRepeats; ++i) c = torch::mm(a, c.mul_(1e-3));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.gflops = kRepeats * 2.0 * 512 * 512 * 512 / seconds / 1e9;
  return report;
}

// Samples from softmax(logits / temperature) restricted to the smallest set
// of most likely tokens whose mass reaches top_p.
std::int32_t sample(const torch::Tensor& logits, const SamplingOptions& options, std::mt19937_64& rng) {
  const torch::Tensor probs = torch::softmax(logits / options.temperature, -1);
  const auto [sorted, order] = probs.sort(-1, true);
  const float* p = sorted.data_ptr<float>();
  const std::int64_t* ids = order.data_ptr<std::int64_t>();
  std::int64_t keep = 0;
  double mass = 0;
  while (keep < sorted.numel() && (keep == 0 || mass < options.top_p)) mass += p[keep++];
  double draw = std::uniform_real_distribution<double>(0, mass)(rng);
  for (std::int64_t i = 0; i < keep; ++i) {
    draw -= p[i];
    if (draw <= 0) return static_cast<std::int32_t>(ids[i]);
  }
  return static_cast<std::int32_t>(ids[keep - 1]);
}

torch::Tensor as_tensor(const std::vector<std::int32_t>& tokens) {
  return torch::tensor(std::vector<std::int64_t>(tokens.begin(), tokens.end()), torch::kLong).unsqueeze(0);
}

}  // namespace

std::vector<std::int32_t> generate(const Llama& model, const std::vector<std::int32_t>& prompt, std::int32_t eos,
                                   const SamplingOptions& options) {
  if (prompt.empty()) return {};
  c10::InferenceMode inference;
  std::mt19937_64 rng(options.seed);
  Llama::Cache cache;
  const std::int64_t room = model.shape().max_seq - static_cast<std::int64_t>(prompt.size());
  std::vector<std::int32_t> out;
  if (room <= 0) return out;
  torch::Tensor logits = model.step(as_tensor(prompt), cache);
  while (static_cast<int>(out.size()) < options.max_new_tokens) {
    const std::int32_t next = options.temperature > 0 ? sample(logits, options, rng)
                                                      : static_cast<std::int32_t>(logits.argmax().item<std::int64_t>());
    if (next == eos) break;
    out.push_back(next);
    if (cache.length >= model.shape().max_seq) break;
    logits = model.step(as_tensor({next}), cache);
  }
  return out;
}

namespace {

class LlamaGenerator : public Generator {
 public:
  LlamaGenerator(const ModelShape& shape, const std::vector<NamedTensor>& weights) : model_(shape, weights) {}

  std::vector<std::int32_t> generate(const std::vector<std::int32_t>& prompt, std::int32_t eos,
                                     const SamplingOptions& options) const override {
    return student::generate(model_, prompt, eos, options);
  }

  std::vector<std::vector<float>> logits(const std::vector<std::int32_t>& tokens) const override {
    c10::InferenceMode inference;
    const torch::Tensor all = model_.forward(as_tensor(tokens)).squeeze(0).contiguous();
    std::vector<std::vector<float>> out;
    for (std::int64_t i = 0; i < all.size(0); ++i) {
      const float* row = all[i].data_ptr<float>();
      out.emplace_back(row, row + all.size(1));
    }
    return out;
  }

 private:
  Llama model_;
};

class LibtorchBackend : public TorchBackend {
 public:
  TrainResult train(const ModelShape& shape, const TrainSettings& settings, const std::vector<Example>& train_set,
                    const std::vector<Example>& holdout, const std::vector<EvalPrompt>& eval_prompts,
                    const std::filesystem::path& checkpoint_dir, const std::filesystem::path& resume_from,
                    const TrainHooks& hooks) const override {
    return student::train(shape, settings, train_set, holdout, eval_prompts, checkpoint_dir, resume_from, hooks);
  }
  std::unique_ptr<Generator> generator(const ModelShape& shape, const std::vector<NamedTensor>& weights,
                                       unsigned threads) const override {
    set_threads(threads);
    return std::make_unique<LlamaGenerator>(shape, weights);
  }
  BlasReport check_blas(unsigned threads) const override { return measure_blas(threads); }
};

}  // namespace

}  // namespace distill::student

extern "C" __attribute__((visibility("default"))) const distill::student::TorchBackend* distill_student_torch_backend() {
  static const distill::student::LibtorchBackend backend;
  return &backend;
}
