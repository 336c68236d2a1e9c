// The student exporters' files read back byte by byte: the safetensors
// header and data, the Hugging Face config files, the GGUF key-values,
// tensor infos, alignment, q/k row permutation and F16 data; F16 rounding
// against the compiler's _Float16; and the errors the writers throw.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sys/mount.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <variant>

#include "export.h"
#include "f16.h"
#include "tiny_model.h"

namespace {

using namespace distill::student;
using Json = nlohmann::json;
namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Json read_json(const fs::path& file) { return Json::parse(slurp(file)); }

std::uint16_t reference_f16(float x) { return std::bit_cast<std::uint16_t>(static_cast<_Float16>(x)); }

// ---- F16 conversion ----

TEST(F16, MatchesTheCompilersRoundingOnSampledBitPatterns) {
  std::uint64_t mismatches = 0;
  for (std::uint64_t bits = 0; bits <= 0xffffffffull; bits += 997) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
    if (std::isnan(x)) continue;
    mismatches += f32_to_f16(x) != reference_f16(x);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(F16, RoundsTiesToEvenOverflowsAndUnderflows) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);                  // largest half
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7bff);                 // below the midpoint
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                  // the midpoint ties to even: infinity
  EXPECT_EQ(f32_to_f16(-1e9f), 0xfc00);                     // overflow keeps the sign
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);        // tie between 1 and 1+2^-10: even is 1
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);        // tie between 1+2^-10 and 1+2^-9: even is up
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);     // half of it ties to even zero
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -26)), 0x0001);     // 0.75 units rounds up
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 units ties to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(INFINITY), 0x7c00);
  const std::uint16_t nan = f32_to_f16(std::nanf(""));
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
}

// ---- a GGUF reader, written from the format description ----

struct GgufValue {
  std::uint32_t type = 0;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string> scalar;
  std::uint32_t array_type = 0;
  std::vector<GgufValue> array;
};

struct GgufTensor {
  std::vector<std::uint64_t> dims;  // innermost first
  std::uint32_t type = 0;
  std::uint64_t offset = 0;
};

struct Gguf {
  std::string bytes;
  std::uint32_t version = 0;
  std::map<std::string, GgufValue> kv;
  std::vector<std::string> order;
  std::map<std::string, GgufTensor> tensors;
  std::uint64_t data_start = 0;

  template <typename T>
  std::vector<T> data(const std::string& name) const {
    const auto& t = tensors.at(name);
    std::size_t n = 1;
    for (const auto d : t.dims) n *= d;
    std::vector<T> out(n);
    std::memcpy(out.data(), bytes.data() + data_start + t.offset, n * sizeof(T));
    return out;
  }
};

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    if (at_ + sizeof(T) > bytes_.size()) throw std::runtime_error("GGUF truncated");
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string string() {
    const auto n = get<std::uint64_t>();
    if (at_ + n > bytes_.size()) throw std::runtime_error("GGUF string truncated");
    std::string s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }
  GgufValue value(std::uint32_t type) {
    GgufValue v;
    v.type = type;
    switch (type) {
      case 0: v.scalar = std::uint64_t{get<std::uint8_t>()}; break;
      case 1: v.scalar = std::int64_t{get<std::int8_t>()}; break;
      case 2: v.scalar = std::uint64_t{get<std::uint16_t>()}; break;
      case 3: v.scalar = std::int64_t{get<std::int16_t>()}; break;
      case 4: v.scalar = std::uint64_t{get<std::uint32_t>()}; break;
      case 5: v.scalar = std::int64_t{get<std::int32_t>()}; break;
      case 6: v.scalar = double{get<float>()}; break;
      case 7: v.scalar = get<std::uint8_t>() != 0; break;
      case 8: v.scalar = string(); break;
      case 9: {
        v.array_type = get<std::uint32_t>();
        const auto n = get<std::uint64_t>();
        for (std::uint64_t i = 0; i < n; ++i) v.array.push_back(value(v.array_type));
        break;
      }
      case 10: v.scalar = get<std::uint64_t>(); break;
      case 11: v.scalar = get<std::int64_t>(); break;
      case 12: v.scalar = get<double>(); break;
      default: throw std::runtime_error("GGUF value type " + std::to_string(type));
    }
    return v;
  }
  std::uint64_t at() const { return at_; }

 private:
  const std::string& bytes_;
  std::uint64_t at_ = 0;
};

Gguf read_gguf(const fs::path& file) {
  Gguf g;
  g.bytes = slurp(file);
  Reader r(g.bytes);
  if (r.get<std::uint32_t>() != 0x46554747u) throw std::runtime_error("not GGUF");
  g.version = r.get<std::uint32_t>();
  const auto tensors = r.get<std::uint64_t>();
  const auto kvs = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < kvs; ++i) {
    std::string key = r.string();
    const auto type = r.get<std::uint32_t>();
    g.order.push_back(key);
    if (!g.kv.emplace(key, r.value(type)).second) throw std::runtime_error("duplicate key " + key);
  }
  for (std::uint64_t i = 0; i < tensors; ++i) {
    std::string name = r.string();
    GgufTensor t;
    const auto dims = r.get<std::uint32_t>();
    for (std::uint32_t d = 0; d < dims; ++d) t.dims.push_back(r.get<std::uint64_t>());
    t.type = r.get<std::uint32_t>();
    t.offset = r.get<std::uint64_t>();
    g.order.push_back(name);
    g.tensors.emplace(name, t);
  }
  g.data_start = (r.at() + 31) / 32 * 32;
  return g;
}

std::uint64_t u(const Gguf& g, const std::string& key) { return std::get<std::uint64_t>(g.kv.at(key).scalar); }
double f(const Gguf& g, const std::string& key) { return std::get<double>(g.kv.at(key).scalar); }
bool b(const Gguf& g, const std::string& key) { return std::get<bool>(g.kv.at(key).scalar); }
std::string s(const Gguf& g, const std::string& key) { return std::get<std::string>(g.kv.at(key).scalar); }

// ---- the tiny student, shared by the file tests ----

class Export : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("student_export_test-" + std::to_string(::getpid()));
    model_ = tiny::train_tokenizer(root_ / "sp", "bpe", 400);
    ASSERT_TRUE(sp_.Load(model_.string()).ok());
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  void SetUp() override {
    shape_ = tiny::tiny_shape(sp_.GetPieceSize(), true);
    weights_ = tiny::random_weights(shape_, 5, 0.7f);
    tokenizer_ = tiny::tiny_tokenizer(model_);
    out_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(out_);
  }

  const NamedTensor& weight(const std::string& name) const {
    for (const auto& t : weights_)
      if (t.name == name) return t;
    throw std::runtime_error("no weight " + name);
  }
  NamedTensor& weight(const std::string& name) {
    return const_cast<NamedTensor&>(static_cast<const Export*>(this)->weight(name));
  }

  static inline fs::path root_, model_;
  static inline sentencepiece::SentencePieceProcessor sp_;
  ModelShape shape_;
  std::vector<NamedTensor> weights_;
  ExportTokenizer tokenizer_;
  fs::path out_;
};

TEST_F(Export, SafetensorsHeaderListsEveryTensorAndItsOffsetsCoverTheDataExactly) {
  write_hf(out_, shape_, weights_, tokenizer_, 32);
  const std::string file = slurp(out_ / "model.safetensors");
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  ASSERT_LE(8 + length, file.size());
  EXPECT_EQ((8 + length) % 8, 0u);
  const Json header = Json::parse(file.substr(8, length));
  const std::uint64_t data_size = file.size() - 8 - length;

  EXPECT_EQ(header.at("__metadata__").at("format"), "pt");
  EXPECT_EQ(header.size(), weights_.size() + 1);  // tied: no lm_head
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const auto& w : weights_) {
    SCOPED_TRACE(w.name);
    ASSERT_TRUE(header.contains(w.name));
    const Json& t = header.at(w.name);
    EXPECT_EQ(t.at("dtype"), "F32");
    EXPECT_EQ(t.at("shape").get<std::vector<std::int64_t>>(), w.shape);
    const auto span = t.at("data_offsets").get<std::pair<std::uint64_t, std::uint64_t>>();
    ASSERT_EQ(span.second - span.first, w.data.size() * 4);
    ASSERT_LE(span.second, data_size);
    EXPECT_EQ(std::memcmp(file.data() + 8 + length + span.first, w.data.data(), w.data.size() * 4), 0);
    spans.push_back(span);
  }
  std::sort(spans.begin(), spans.end());
  std::uint64_t end = 0;
  for (const auto& [begin, stop] : spans) {
    EXPECT_EQ(begin, end) << "gap or overlap";
    end = stop;
  }
  EXPECT_EQ(end, data_size);
}

TEST_F(Export, HuggingFaceConfigFilesDescribeTheModelAndTokenizer) {
  write_hf(out_, shape_, weights_, tokenizer_, 32);
  const Json config = read_json(out_ / "config.json");
  EXPECT_EQ(config.at("architectures"), Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(config.at("model_type"), "llama");
  EXPECT_EQ(config.at("vocab_size"), shape_.vocab_size);
  EXPECT_EQ(config.at("hidden_size"), 64);
  EXPECT_EQ(config.at("intermediate_size"), 128);
  EXPECT_EQ(config.at("num_hidden_layers"), 2);
  EXPECT_EQ(config.at("num_attention_heads"), 4);
  EXPECT_EQ(config.at("num_key_value_heads"), 2);
  EXPECT_EQ(config.at("max_position_embeddings"), 256);
  EXPECT_EQ(config.at("tie_word_embeddings"), true);
  EXPECT_EQ(config.at("torch_dtype"), "float32");
  EXPECT_DOUBLE_EQ(config.at("rms_norm_eps").get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(config.at("rope_theta").get<double>(), 10000.0);
  EXPECT_EQ(config.at("bos_token_id"), sp_.bos_id());
  EXPECT_EQ(config.at("eos_token_id"), sp_.eos_id());

  const Json generation = read_json(out_ / "generation_config.json");
  EXPECT_EQ(generation.at("max_new_tokens"), 32);
  EXPECT_EQ(generation.at("eos_token_id"), sp_.eos_id());

  const Json tok = read_json(out_ / "tokenizer_config.json");
  EXPECT_EQ(tok.at("tokenizer_class"), "LlamaTokenizer");
  EXPECT_EQ(tok.at("chat_template"), tiny::kChatTemplate);
  EXPECT_EQ(tok.at("bos_token"), "<s>");
  EXPECT_EQ(tok.at("eos_token"), "</s>");
  EXPECT_EQ(tok.at("unk_token"), "<unk>");
  EXPECT_EQ(tok.at("add_bos_token"), true);
  EXPECT_EQ(tok.at("add_eos_token"), false);
  EXPECT_EQ(tok.at("model_max_length"), 256);

  const Json special = read_json(out_ / "special_tokens_map.json");
  EXPECT_EQ(special, Json({{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}));
  EXPECT_EQ(slurp(out_ / "tokenizer.model"), slurp(model_));
}

TEST_F(Export, UntiedModelWritesLmHead) {
  shape_.tie_embeddings = false;
  weights_ = tiny::random_weights(shape_, 6, 0.7f);
  write_hf(out_, shape_, weights_, tokenizer_, 32);
  write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32);
  EXPECT_EQ(read_json(out_ / "config.json").at("tie_word_embeddings"), false);
  const std::string file = slurp(out_ / "model.safetensors");
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  EXPECT_TRUE(Json::parse(file.substr(8, length)).contains("lm_head.weight"));
  const Gguf g = read_gguf(out_ / "m.gguf");
  ASSERT_TRUE(g.tensors.count("output.weight"));
  EXPECT_EQ(g.data<float>("output.weight"), weight("lm_head.weight").data);
}

TEST_F(Export, GgufMetadataDescribesTheModelAndTheSentencePieceVocabulary) {
  write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32);
  const Gguf g = read_gguf(out_ / "m.gguf");
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(s(g, "general.architecture"), "llama");
  EXPECT_EQ(s(g, "general.name"), "m");
  EXPECT_EQ(u(g, "general.file_type"), 0u);
  EXPECT_EQ(u(g, "general.alignment"), 32u);
  EXPECT_EQ(u(g, "llama.context_length"), 256u);
  EXPECT_EQ(u(g, "llama.embedding_length"), 64u);
  EXPECT_EQ(u(g, "llama.block_count"), 2u);
  EXPECT_EQ(u(g, "llama.feed_forward_length"), 128u);
  EXPECT_EQ(u(g, "llama.attention.head_count"), 4u);
  EXPECT_EQ(u(g, "llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(u(g, "llama.rope.dimension_count"), 16u);
  EXPECT_EQ(u(g, "llama.vocab_size"), static_cast<std::uint64_t>(shape_.vocab_size));
  EXPECT_FLOAT_EQ(static_cast<float>(f(g, "llama.rope.freq_base")), 10000.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(f(g, "llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(g.kv.at("llama.rope.freq_base").type, 6u);  // float32, as llama.cpp requires

  EXPECT_EQ(s(g, "tokenizer.ggml.model"), "llama");
  EXPECT_EQ(u(g, "tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(u(g, "tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_EQ(u(g, "tokenizer.ggml.unknown_token_id"), 0u);
  EXPECT_FALSE(g.kv.count("tokenizer.ggml.padding_token_id"));
  EXPECT_TRUE(b(g, "tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(b(g, "tokenizer.ggml.add_eos_token"));
  EXPECT_FALSE(b(g, "tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(s(g, "tokenizer.chat_template"), tiny::kChatTemplate);

  const auto& tokens = g.kv.at("tokenizer.ggml.tokens").array;
  const auto& scores = g.kv.at("tokenizer.ggml.scores").array;
  const auto& types = g.kv.at("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), static_cast<std::size_t>(sp_.GetPieceSize()));
  ASSERT_EQ(scores.size(), tokens.size());
  EXPECT_EQ(types.array_type, 5u);  // int32
  ASSERT_EQ(types.array.size(), tokens.size());
  std::map<std::int64_t, int> type_counts;
  for (int id = 0; id < sp_.GetPieceSize(); ++id) {
    EXPECT_EQ(std::get<std::string>(tokens[id].scalar), sp_.IdToPiece(id));
    EXPECT_FLOAT_EQ(static_cast<float>(std::get<double>(scores[id].scalar)), sp_.GetScore(id));
    ++type_counts[std::get<std::int64_t>(types.array[id].scalar)];
  }
  EXPECT_EQ(type_counts[2], 1);    // <unk>
  EXPECT_EQ(type_counts[3], 2);    // <s>, </s>
  EXPECT_EQ(type_counts[4], 4);    // the chat markers
  EXPECT_EQ(type_counts[6], 256);  // <0x00>..<0xFF>
  for (const auto& marker : tiny::kChatMarkers)
    EXPECT_EQ(std::get<std::int64_t>(types.array[sp_.PieceToId(marker)].scalar), 4) << marker;
  EXPECT_EQ(std::get<std::string>(tokens[sp_.PieceToId("<0x0A>")].scalar), "<0x0A>");
}

// Independent of the writer: llama.cpp's converter reshapes the rows of
// each head as [2, hd/2] and transposes them to [hd/2, 2].
std::vector<float> interleave_heads(const NamedTensor& t, int heads) {
  const auto rows = static_cast<std::size_t>(t.shape[0]), cols = static_cast<std::size_t>(t.shape[1]);
  const std::size_t hd = rows / static_cast<std::size_t>(heads);
  std::vector<float> out;
  for (std::size_t h = 0; h < static_cast<std::size_t>(heads); ++h)
    for (std::size_t i = 0; i < hd / 2; ++i)
      for (std::size_t half = 0; half < 2; ++half) {
        const float* row = &t.data[(h * hd + half * (hd / 2) + i) * cols];
        out.insert(out.end(), row, row + cols);
      }
  return out;
}

TEST_F(Export, GgufTensorsAreAlignedInGgmlDimsOrderWithQAndKRowsInterleaved) {
  write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32);
  const Gguf g = read_gguf(out_ / "m.gguf");
  ASSERT_EQ(g.tensors.size(), 2 + 9 * 2u);
  EXPECT_FALSE(g.tensors.count("output.weight"));
  for (const auto& [name, t] : g.tensors) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(t.type, 0u);
    std::uint64_t n = 4;
    for (const auto d : t.dims) n *= d;
    EXPECT_LE(g.data_start + t.offset + n, g.bytes.size());
  }
  EXPECT_EQ(g.tensors.at("token_embd.weight").dims, (std::vector<std::uint64_t>{64, std::uint64_t(shape_.vocab_size)}));
  EXPECT_EQ(g.tensors.at("blk.0.attn_k.weight").dims, (std::vector<std::uint64_t>{64, 32}));
  EXPECT_EQ(g.tensors.at("blk.1.ffn_down.weight").dims, (std::vector<std::uint64_t>{128, 64}));
  EXPECT_EQ(g.tensors.at("blk.1.ffn_norm.weight").dims, (std::vector<std::uint64_t>{64}));

  EXPECT_EQ(g.data<float>("token_embd.weight"), weight("model.embed_tokens.weight").data);
  EXPECT_EQ(g.data<float>("blk.1.attn_v.weight"), weight("model.layers.1.self_attn.v_proj.weight").data);
  EXPECT_EQ(g.data<float>("blk.1.ffn_gate.weight"), weight("model.layers.1.mlp.gate_proj.weight").data);
  EXPECT_EQ(g.data<float>("output_norm.weight"), weight("model.norm.weight").data);
  const auto& q = weight("model.layers.1.self_attn.q_proj.weight");
  const auto& k = weight("model.layers.1.self_attn.k_proj.weight");
  EXPECT_EQ(g.data<float>("blk.1.attn_q.weight"), interleave_heads(q, 4));
  EXPECT_EQ(g.data<float>("blk.1.attn_k.weight"), interleave_heads(k, 2));
  EXPECT_NE(g.data<float>("blk.1.attn_q.weight"), q.data);
}

TEST_F(Export, F16GgufStoresMatricesAsHalvesAndNormsAsF32) {
  write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F16);
  const Gguf g = read_gguf(out_ / "m.gguf");
  EXPECT_EQ(u(g, "general.file_type"), 1u);
  for (const auto& [name, t] : g.tensors) EXPECT_EQ(t.type, t.dims.size() == 1 ? 0u : 1u) << name;
  const auto half = g.data<std::uint16_t>("blk.0.ffn_up.weight");
  const auto& up = weight("model.layers.0.mlp.up_proj.weight").data;
  ASSERT_EQ(half.size(), up.size());
  for (std::size_t i = 0; i < up.size(); ++i) ASSERT_EQ(half[i], reference_f16(up[i])) << i;
  EXPECT_EQ(g.data<float>("blk.0.attn_norm.weight"), weight("model.layers.0.input_layernorm.weight").data);
}

// ---- errors ----

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(Export, MissingMisshapenExtraOrNonFiniteTensorsAreRefusedBeforeWriting) {
  auto missing = weights_;
  missing.erase(missing.begin() + 5);
  EXPECT_EQ(error_of([&] { write_gguf(out_ / "m.gguf", shape_, missing, tokenizer_, GgufType::F32); }),
            "tensor model.layers.0.self_attn.o_proj.weight [64, 64] is missing");

  weight("model.layers.1.self_attn.k_proj.weight").shape = {64, 64};
  EXPECT_EQ(error_of([&] { write_hf(out_ / "hf", shape_, weights_, tokenizer_, 8); }),
            "tensor model.layers.1.self_attn.k_proj.weight has shape [64, 64], expected [32, 64]");
  weight("model.layers.1.self_attn.k_proj.weight").shape = {32, 64};

  weights_.push_back({"lm_head.weight", {shape_.vocab_size, 64}, std::vector<float>(shape_.vocab_size * 64)});
  EXPECT_EQ(error_of([&] { write_hf(out_ / "hf", shape_, weights_, tokenizer_, 8); }),
            "tensor lm_head.weight is not part of the model (tie_embeddings is true)");
  weights_.pop_back();

  weight("model.norm.weight").data[3] = NAN;
  EXPECT_EQ(error_of([&] { write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F16); }),
            "tensor model.norm.weight has a non-finite value at index 3");
  EXPECT_TRUE(fs::is_empty(out_));
}

TEST_F(Export, TokenizerThatDoesNotFitTheExportIsRefused) {
  const auto small = tiny::tiny_shape(100, true);
  EXPECT_EQ(error_of([&] {
              write_gguf(out_ / "m.gguf", small, tiny::random_weights(small, 1, 1), tokenizer_, GgufType::F32);
            }),
            "tokenizer " + model_.string() + ": has " + std::to_string(sp_.GetPieceSize()) +
                " pieces, more than the model's vocab_size 100");
  tokenizer_.add_space_prefix = true;
  EXPECT_EQ(error_of([&] { write_hf(out_ / "hf", shape_, weights_, tokenizer_, 8); }),
            "tokenizer " + model_.string() +
                ": was trained with add_dummy_prefix=false but the export says add_space_prefix=true");
  tokenizer_.add_space_prefix = false;
  tokenizer_.model_file = out_ / "none.model";
  EXPECT_EQ(error_of([&] { write_hf(out_ / "hf", shape_, weights_, tokenizer_, 8); }),
            "cannot open " + (out_ / "none.model").string() + ": No such file or directory");
  EXPECT_TRUE(fs::is_empty(out_));
}

TEST_F(Export, PaddedVocabularyGetsUnusedPadTokens) {
  shape_ = tiny::tiny_shape(sp_.GetPieceSize() + 3, true);
  weights_ = tiny::random_weights(shape_, 2, 0.7f);
  write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32);
  const Gguf g = read_gguf(out_ / "m.gguf");
  const auto& tokens = g.kv.at("tokenizer.ggml.tokens").array;
  ASSERT_EQ(tokens.size(), static_cast<std::size_t>(shape_.vocab_size));
  const int last = shape_.vocab_size - 1;
  EXPECT_EQ(std::get<std::string>(tokens[last].scalar), "[PAD" + std::to_string(last) + "]");
  EXPECT_EQ(std::get<std::int64_t>(g.kv.at("tokenizer.ggml.token_type").array[last].scalar), 5);
}

TEST_F(Export, UnwritableTargetNamesTheFileAndLeavesNoTempFile) {
  fs::create_directories(out_ / "m.gguf" / "occupied");
  const std::string error =
      error_of([&] { write_gguf(out_ / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32); });
  EXPECT_TRUE(error.starts_with("cannot write " + (out_ / "m.gguf").string() + ": ")) << error;
  EXPECT_EQ(std::distance(fs::directory_iterator(out_), fs::directory_iterator()), 1);
}

// A full disk (a 64 KiB tmpfs) fails the write with the system's reason and
// keeps the file that was there.
TEST_F(Export, FullDiskKeepsThePreviousFile) {
  const fs::path disk = out_ / "disk";
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  std::ofstream(disk / "m.gguf") << "previous";
  const std::string error =
      error_of([&] { write_gguf(disk / "m.gguf", shape_, weights_, tokenizer_, GgufType::F32); });
  const std::string kept = slurp(disk / "m.gguf");
  const auto files = std::distance(fs::directory_iterator(disk), fs::directory_iterator());
  ::umount(disk.c_str());
  EXPECT_NE(error.find("cannot write " + (disk / "m.gguf").string() + ": "), std::string::npos) << error;
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  EXPECT_EQ(kept, "previous");
  EXPECT_EQ(files, 1);
}

}  // namespace
