// write_hf: the Hugging Face folder of a Llama student (see export.h):
// model.safetensors (an 8-byte little-endian header length, a JSON header of
// dtype/shape/data_offsets per tensor padded with spaces to 8 bytes, then
// the raw F32 data back to back), config files and the tokenizer.
#include <bit>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "atomic_file.h"
#include "export.h"
#include "layout.h"
#include "vocab.h"

namespace distill::student {
namespace {

static_assert(std::endian::native == std::endian::little, "the exports are written in host byte order");

using Json = nlohmann::ordered_json;

std::string safetensors_header(const std::vector<const NamedTensor*>& tensors) {
  Json header = {{"__metadata__", {{"format", "pt"}}}};
  std::uint64_t offset = 0;
  for (const auto* t : tensors) {
    const std::uint64_t bytes = t->data.size() * sizeof(float);
    header[t->name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_safetensors(const std::filesystem::path& file, const std::vector<const NamedTensor*>& tensors) {
  const std::string header = safetensors_header(tensors);
  const std::uint64_t length = header.size();
  AtomicFile out(file);
  out.append({reinterpret_cast<const char*>(&length), sizeof length});
  out.append(header);
  for (const auto* t : tensors)
    out.append({reinterpret_cast<const char*>(t->data.data()), t->data.size() * sizeof(float)});
  out.commit();
}

Json token_or_null(const Vocab& v, int id) { return id < 0 ? Json(nullptr) : Json(v.tokens[id]); }

Json config(const ModelShape& s, const Vocab& v) {
  Json c = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", s.vocab_size},
      {"hidden_size", s.d_model},
      {"intermediate_size", s.ffn},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.kv_heads},
      {"head_dim", s.d_model / s.heads},
      {"hidden_act", "silu"},
      {"max_position_embeddings", s.max_seq},
      {"rms_norm_eps", s.rms_eps},
      {"rope_theta", s.rope_theta},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"pretraining_tp", 1},
      {"initializer_range", 0.02},
      {"tie_word_embeddings", s.tie_embeddings},
      {"use_cache", true},
      {"bos_token_id", v.bos < 0 ? Json(nullptr) : Json(v.bos)},
      {"eos_token_id", v.eos},
      {"torch_dtype", "float32"},
  };
  if (v.pad >= 0) c["pad_token_id"] = v.pad;
  return c;
}

Json generation_config(const Vocab& v, int max_new_tokens) {
  Json c = {{"bos_token_id", v.bos < 0 ? Json(nullptr) : Json(v.bos)},
            {"eos_token_id", v.eos},
            {"do_sample", false},
            {"max_new_tokens", max_new_tokens}};
  if (v.pad >= 0) c["pad_token_id"] = v.pad;
  return c;
}

Json special_tokens_map(const Vocab& v) {
  Json m = {{"bos_token", token_or_null(v, v.bos)}, {"eos_token", v.tokens[v.eos]}, {"unk_token", v.tokens[v.unk]}};
  if (v.pad >= 0) m["pad_token"] = v.tokens[v.pad];
  return m;
}

// legacy=false with add_prefix_space makes transformers' LlamaTokenizer add
// a leading space exactly when the SentencePiece model was trained to.
Json tokenizer_config(const ModelShape& s, const ExportTokenizer& t, const Vocab& v) {
  Json c = {{"tokenizer_class", "LlamaTokenizer"},
            {"add_bos_token", t.add_bos},
            {"add_eos_token", false},
            {"add_prefix_space", t.add_space_prefix},
            {"legacy", false},
            {"bos_token", token_or_null(v, v.bos)},
            {"eos_token", v.tokens[v.eos]},
            {"unk_token", v.tokens[v.unk]},
            {"pad_token", token_or_null(v, v.pad)},
            {"model_max_length", s.max_seq},
            {"clean_up_tokenization_spaces", false},
            {"sp_model_kwargs", Json::object()}};
  if (!t.chat_template.empty()) c["chat_template"] = t.chat_template;
  return c;
}

void write_json(const std::filesystem::path& file, const Json& json) { write_file_atomically(file, json.dump(2) + "\n"); }

}  // namespace

void write_hf(const std::filesystem::path& dir, const ModelShape& shape, const std::vector<NamedTensor>& tensors,
              const ExportTokenizer& tokenizer, int max_new_tokens_default) {
  const auto ordered = checked_tensors(shape, tensors);
  const std::string tokenizer_bytes = read_file(tokenizer.model_file);
  const Vocab vocab = read_vocab(tokenizer, tokenizer_bytes, shape.vocab_size);
  if (max_new_tokens_default <= 0)
    throw std::runtime_error("max_new_tokens_default must be positive, not " + std::to_string(max_new_tokens_default));

  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw std::runtime_error("cannot create folder " + dir.string() + ": " + error.message());
  write_safetensors(dir / "model.safetensors", ordered);
  write_file_atomically(dir / "tokenizer.model", tokenizer_bytes);
  write_json(dir / "tokenizer_config.json", tokenizer_config(shape, tokenizer, vocab));
  write_json(dir / "special_tokens_map.json", special_tokens_map(vocab));
  write_json(dir / "generation_config.json", generation_config(vocab, max_new_tokens_default));
  write_json(dir / "config.json", config(shape, vocab));
}

}  // namespace distill::student
