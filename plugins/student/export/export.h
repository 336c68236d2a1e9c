// Exporters of a trained Llama-layout student: a Hugging Face folder
// (safetensors + config + tokenizer files) and a GGUF file for llama.cpp.
// Torch-free: the trainer hands over plain float tensors in Hugging Face
// naming and layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace distill::student {

struct ModelShape {
  int vocab_size = 0, layers = 0, d_model = 0, heads = 0, kv_heads = 0, ffn = 0, max_seq = 0;
  bool tie_embeddings = true;
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
};

// One weight, in Hugging Face Llama naming and layout: row-major; linear
// weights are [out_features, in_features]. With hd = d_model / heads:
//   model.embed_tokens.weight [V,D]
//   model.layers.N.input_layernorm.weight [D]
//   model.layers.N.self_attn.q_proj.weight [H*hd,D], k_proj [KV*hd,D],
//     v_proj [KV*hd,D], o_proj [D,H*hd]
//   model.layers.N.post_attention_layernorm.weight [D]
//   model.layers.N.mlp.gate_proj.weight [F,D], up_proj [F,D], down_proj [D,F]
//   model.norm.weight [D]
//   lm_head.weight [V,D] (absent when tie_embeddings)
// Rotary embeddings follow Hugging Face's rotate_half convention (first
// half / second half of each head) with theta = rope_theta.
struct NamedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

struct ExportTokenizer {
  std::filesystem::path model_file;  // a SentencePiece tokenizer.model trained with byte_fallback
  std::string chat_template;         // Jinja; empty writes none
  bool add_bos = true;               // a BOS token starts every sequence
  bool add_space_prefix = false;     // SentencePiece add_dummy_prefix as trained (checked against the model)
};

enum class GgufType { F32, F16 };

// Both writers check that the tensors are exactly the expected set (no
// missing, extra or misshapen tensor, no non-finite value) and that the
// tokenizer fits the shape, before anything is written. Each file is written
// atomically (temp file, fsync, rename). Errors throw std::runtime_error
// naming the file or tensor and the cause.

// Writes dir/model.safetensors (F32), config.json (LlamaForCausalLM),
// generation_config.json, tokenizer.model (a copy), tokenizer_config.json
// and special_tokens_map.json; creates dir when missing.
void write_hf(const std::filesystem::path& dir, const ModelShape& shape, const std::vector<NamedTensor>& tensors,
              const ExportTokenizer& tokenizer, int max_new_tokens_default);

// Writes one GGUF v3 file (llama architecture, SentencePiece vocabulary),
// creating its folder when missing.
// With F16, matrices are stored as F16 and 1-D tensors (norms) stay F32.
// q_proj/k_proj rows are permuted for llama.cpp's interleaved rotary pairs.
void write_gguf(const std::filesystem::path& file, const ModelShape& shape, const std::vector<NamedTensor>& tensors,
                const ExportTokenizer& tokenizer, GgufType type);

}  // namespace distill::student
