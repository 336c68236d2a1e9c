// The Llama-layout student in libtorch: its weights (held flat, in Hugging
// Face naming and layout, so export is a copy), the forward pass used by
// training, and the cached forward pass used by generation. Included only
// by model.cpp and trainer.cpp.
#pragma once

#include <torch/torch.h>

#include "student.h"

namespace distill::student {

class Llama {
 public:
  // Random weights drawn from `seed` (normal, std 0.02; norms at 1).
  Llama(const ModelShape& shape, std::uint64_t seed);
  // Weights from an export or a checkpoint; throws when one is missing or misshapen.
  Llama(const ModelShape& shape, const std::vector<NamedTensor>& weights);

  // tokens [B, T] (int64) -> next-token logits [B, T, V].
  torch::Tensor forward(const torch::Tensor& tokens) const;

  // Per-layer keys and values of the tokens seen so far, for generation.
  struct Cache {
    std::vector<torch::Tensor> keys, values;  // [1, KV, L, hd] each
    std::int64_t length = 0;
  };
  // Appends tokens [1, T] to the cache and returns the last position's logits [V].
  torch::Tensor step(const torch::Tensor& tokens, Cache& cache) const;

  // Every trainable tensor, in names() order.
  const std::vector<torch::Tensor>& parameters() const { return params_; }
  const std::vector<std::string>& names() const { return names_; }
  // True for tensors that take weight decay (matrices, not norm gains).
  bool decays(std::size_t index) const { return params_[index].dim() > 1; }
  std::vector<NamedTensor> weights() const;
  const ModelShape& shape() const { return shape_; }

 private:
  struct Layer {
    torch::Tensor attn_norm, q, k, v, o, ffn_norm, gate, up, down;
  };
  void declare(const std::function<torch::Tensor(const std::string&, std::vector<std::int64_t>)>& make);
  torch::Tensor block(const Layer& layer, torch::Tensor x, std::int64_t start, const torch::Tensor& mask,
                      Cache* cache, std::size_t index) const;
  // A projection's output [B, T, heads * head_dim] rotated for positions
  // from `start` on and times `scale`, as [B, heads, T, head_dim].
  torch::Tensor rope(const torch::Tensor& projected, std::int64_t start, std::int64_t heads, double scale) const;

  ModelShape shape_;
  std::int64_t head_dim_;
  torch::Tensor embed_, norm_, lm_head_;
  std::vector<Layer> layers_;
  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;
  torch::Tensor cos_, sin_;  // [max_seq, head_dim]
};

// The tokens the model continues `prompt` with, up to and excluding `eos`
// (or max_new_tokens, or max_seq).
std::vector<std::int32_t> generate(const Llama& model, const std::vector<std::int32_t>& prompt, std::int32_t eos,
                                   const SamplingOptions& options);

// Sets libtorch's and OpenBLAS's thread counts for this process.
void set_threads(unsigned threads);

// TorchBackend::train (trainer.cpp).
TrainResult train(const ModelShape& shape, const TrainSettings& settings, const std::vector<Example>& train_set,
                  const std::vector<Example>& holdout, const std::vector<EvalPrompt>& eval_prompts,
                  const std::filesystem::path& checkpoint_dir, const std::filesystem::path& resume_from,
                  const TrainHooks& hooks);

}  // namespace distill::student
