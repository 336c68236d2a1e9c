// write_gguf: one GGUF v3 file for llama.cpp's `llama` architecture (see
// export.h). Layout: magic "GGUF", version, tensor and key-value counts,
// typed key-values, tensor infos (name, dims innermost first, ggml type,
// offset), zero padding to the alignment, then each tensor's data padded
// to the alignment.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <span>
#include <stdexcept>

#include "atomic_file.h"
#include "export.h"
#include "f16.h"
#include "layout.h"
#include "vocab.h"

namespace distill::student {
namespace {

static_assert(std::endian::native == std::endian::little, "the exports are written in host byte order");

constexpr std::uint32_t kVersion = 3;
constexpr std::uint64_t kAlignment = 32;

// GGUF metadata value types.
enum class Kv : std::uint32_t { U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9 };
// ggml tensor types.
constexpr std::uint32_t kGgmlF32 = 0, kGgmlF16 = 1;
// llama.cpp's general.file_type values (LLAMA_FTYPE_ALL_F32, _MOSTLY_F16).
constexpr std::uint32_t kFileAllF32 = 0, kFileMostlyF16 = 1;

class Header {
 public:
  template <typename T>
  void raw(T value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void string(std::string_view s) {
    raw<std::uint64_t>(s.size());
    bytes_.append(s);
  }

  void u32(std::string_view key, std::uint32_t v) { scalar(key, Kv::U32, v); }
  void f32(std::string_view key, double v) { scalar(key, Kv::F32, static_cast<float>(v)); }
  void boolean(std::string_view key, bool v) { scalar(key, Kv::Bool, static_cast<std::uint8_t>(v)); }
  void str(std::string_view key, std::string_view v) {
    begin(key, Kv::String);
    string(v);
  }
  void strings(std::string_view key, const std::vector<std::string>& vs) {
    array(key, Kv::String, vs.size());
    for (const auto& v : vs) string(v);
  }
  void f32s(std::string_view key, const std::vector<float>& vs) {
    array(key, Kv::F32, vs.size());
    for (const float v : vs) raw(v);
  }
  void i32s(std::string_view key, const std::vector<std::int32_t>& vs) {
    array(key, Kv::I32, vs.size());
    for (const auto v : vs) raw(v);
  }

  std::uint64_t kv_count() const { return kv_count_; }
  const std::string& bytes() const { return bytes_; }

 private:
  void begin(std::string_view key, Kv type) {
    string(key);
    raw(static_cast<std::uint32_t>(type));
    ++kv_count_;
  }
  template <typename T>
  void scalar(std::string_view key, Kv type, T v) {
    begin(key, type);
    raw(v);
  }
  void array(std::string_view key, Kv type, std::size_t n) {
    begin(key, Kv::Array);
    raw(static_cast<std::uint32_t>(type));
    raw<std::uint64_t>(n);
  }

  std::string bytes_;
  std::uint64_t kv_count_ = 0;
};

void model_metadata(Header& h, const std::string& name, const ModelShape& s, GgufType type) {
  const auto u = [](int v) { return static_cast<std::uint32_t>(v); };
  h.str("general.architecture", "llama");
  h.str("general.name", name);
  h.u32("general.file_type", type == GgufType::F16 ? kFileMostlyF16 : kFileAllF32);
  h.u32("general.alignment", kAlignment);
  h.u32("llama.context_length", u(s.max_seq));
  h.u32("llama.embedding_length", u(s.d_model));
  h.u32("llama.block_count", u(s.layers));
  h.u32("llama.feed_forward_length", u(s.ffn));
  h.u32("llama.attention.head_count", u(s.heads));
  h.u32("llama.attention.head_count_kv", u(s.kv_heads));
  h.u32("llama.rope.dimension_count", u(s.d_model / s.heads));
  h.f32("llama.rope.freq_base", s.rope_theta);
  h.f32("llama.attention.layer_norm_rms_epsilon", s.rms_eps);
  h.u32("llama.vocab_size", u(s.vocab_size));
}

void tokenizer_metadata(Header& h, const ExportTokenizer& t, const Vocab& v) {
  h.str("tokenizer.ggml.model", "llama");
  h.strings("tokenizer.ggml.tokens", v.tokens);
  h.f32s("tokenizer.ggml.scores", v.scores);
  std::vector<std::int32_t> types;
  for (const auto type : v.types) types.push_back(static_cast<std::int32_t>(type));
  h.i32s("tokenizer.ggml.token_type", types);
  if (v.bos >= 0) h.u32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(v.bos));
  h.u32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(v.eos));
  h.u32("tokenizer.ggml.unknown_token_id", static_cast<std::uint32_t>(v.unk));
  if (v.pad >= 0) h.u32("tokenizer.ggml.padding_token_id", static_cast<std::uint32_t>(v.pad));
  h.boolean("tokenizer.ggml.add_bos_token", t.add_bos);
  h.boolean("tokenizer.ggml.add_eos_token", false);
  h.boolean("tokenizer.ggml.add_space_prefix", t.add_space_prefix);
  if (!t.chat_template.empty()) h.str("tokenizer.chat_template", t.chat_template);
}

// The GGUF name of a Hugging Face tensor name from layout.h.
std::string gguf_name(const std::string& hf) {
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm", "attn_norm"},        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},          {"self_attn.o_proj", "attn_output"},
      {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  const auto dot = hf.find('.', prefix.size());
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1, hf.size() - dot - 1 - std::strlen(".weight"));
  for (const auto& [from, to] : kLayer)
    if (rest == from) return "blk." + layer + "." + to + ".weight";
  throw std::logic_error("no GGUF name for tensor " + hf);
}

// Hugging Face rotates the two halves of each head; llama.cpp's `llama`
// architecture rotates adjacent pairs. Within each head, row j*hd/2 + i
// (j = 0, 1) moves to row 2i + j, as llama.cpp's converter permutes them.
std::vector<float> permute_rows(const NamedTensor& t, int heads) {
  const auto rows = static_cast<std::size_t>(t.shape[0]), cols = static_cast<std::size_t>(t.shape[1]);
  const std::size_t hd = rows / static_cast<std::size_t>(heads), half = hd / 2;
  std::vector<float> out(t.data.size());
  for (std::size_t h = 0; h < static_cast<std::size_t>(heads); ++h)
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t i = 0; i < half; ++i)
        std::memcpy(&out[(h * hd + 2 * i + j) * cols], &t.data[(h * hd + j * half + i) * cols], cols * sizeof(float));
  return out;
}

struct Planned {
  const NamedTensor* source;
  std::string name;
  int permute_heads;  // 0: written as they are
  std::uint32_t type;
  std::uint64_t offset;
};

std::vector<Planned> plan(const ModelShape& s, const std::vector<const NamedTensor*>& tensors, GgufType type) {
  std::vector<Planned> out;
  std::uint64_t offset = 0;
  for (const auto* t : tensors) {
    Planned p{t, gguf_name(t->name), 0, kGgmlF32, offset};
    if (t->name.ends_with("q_proj.weight")) p.permute_heads = s.heads;
    if (t->name.ends_with("k_proj.weight")) p.permute_heads = s.kv_heads;
    if (type == GgufType::F16 && t->shape.size() > 1) p.type = kGgmlF16;
    const std::uint64_t bytes = t->data.size() * (p.type == kGgmlF16 ? 2 : 4);
    offset += (bytes + kAlignment - 1) / kAlignment * kAlignment;
    out.push_back(std::move(p));
  }
  return out;
}

void tensor_infos(Header& h, const std::vector<Planned>& tensors) {
  for (const auto& t : tensors) {
    h.string(t.name);
    const auto& shape = t.source->shape;
    h.raw(static_cast<std::uint32_t>(shape.size()));
    for (auto dim = shape.rbegin(); dim != shape.rend(); ++dim) h.raw(static_cast<std::uint64_t>(*dim));
    h.raw(t.type);
    h.raw(t.offset);
  }
}

void pad(AtomicFile& out) {
  static const char kZeros[kAlignment] = {};
  out.append({kZeros, static_cast<std::size_t>((kAlignment - out.size() % kAlignment) % kAlignment)});
}

void write_data(AtomicFile& out, const Planned& t) {
  const std::vector<float> permuted = t.permute_heads ? permute_rows(*t.source, t.permute_heads) : std::vector<float>{};
  const std::vector<float>& v = t.permute_heads ? permuted : t.source->data;
  if (t.type == kGgmlF32) {
    out.append({reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)});
    return;
  }
  constexpr std::size_t kChunk = 1 << 16;
  std::vector<std::uint16_t> half(kChunk);
  for (std::size_t at = 0; at < v.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, v.size() - at);
    f32_to_f16(std::span(v).subspan(at, n), half.data());
    out.append({reinterpret_cast<const char*>(half.data()), n * sizeof(std::uint16_t)});
  }
}

}  // namespace

void write_gguf(const std::filesystem::path& file, const ModelShape& shape, const std::vector<NamedTensor>& tensors,
                const ExportTokenizer& tokenizer, GgufType type) {
  const auto ordered = checked_tensors(shape, tensors);
  const Vocab vocab = read_vocab(tokenizer, read_file(tokenizer.model_file), shape.vocab_size);
  const auto planned = plan(shape, ordered, type);

  Header kv;
  model_metadata(kv, file.stem().string(), shape, type);
  tokenizer_metadata(kv, tokenizer, vocab);
  Header head;
  head.raw(std::array<char, 4>{'G', 'G', 'U', 'F'});
  head.raw(kVersion);
  head.raw(static_cast<std::uint64_t>(planned.size()));
  head.raw(kv.kv_count());

  if (file.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(file.parent_path(), error);
    if (error) throw std::runtime_error("cannot create folder " + file.parent_path().string() + ": " + error.message());
  }
  AtomicFile out(file);
  out.append(head.bytes());
  out.append(kv.bytes());
  Header infos;
  tensor_infos(infos, planned);
  out.append(infos.bytes());
  for (const auto& t : planned) {
    pad(out);
    write_data(out, t);
  }
  out.commit();
}

}  // namespace distill::student
