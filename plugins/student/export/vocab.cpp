// Reading a SentencePiece model into the exporters' vocabulary (see vocab.h).
#include "vocab.h"

#include <sentencepiece_processor.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

namespace distill::student {
namespace {

// A minimal reader of the protobuf wire format, enough to walk a
// serialized sentencepiece ModelProto.
class Wire {
 public:
  explicit Wire(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return at_ >= bytes_.size(); }

  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) throw std::runtime_error("truncated protobuf varint");
      const auto byte = static_cast<std::uint8_t>(bytes_[at_++]);
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    throw std::runtime_error("overlong protobuf varint");
  }
  // Reads a field's value; returns the bytes of a length-delimited one.
  std::string_view value(int wire_type) {
    std::uint64_t n = 0;
    switch (wire_type) {
      case 0: varint(); return {};
      case 1: n = 8; break;
      case 2: n = varint(); break;
      case 5: n = 4; break;
      default: throw std::runtime_error("unknown protobuf wire type " + std::to_string(wire_type));
    }
    if (n > bytes_.size() - at_) throw std::runtime_error("truncated protobuf field");
    const auto out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// The `type` of each piece (ModelProto field 1 `pieces`, SentencePiece
// field 3 `type`; NORMAL when absent). The SentencePiece 0.1.97 library has
// no IsUserDefined(), so user-defined pieces are recognised from here.
std::vector<int> piece_types(std::string_view model) {
  constexpr int kPieces = 1, kType = 3, kNormal = 1;
  std::vector<int> types;
  Wire proto(model);
  while (!proto.done()) {
    const auto key = proto.varint();
    const auto piece = proto.value(static_cast<int>(key & 7));
    if ((key >> 3) != kPieces) continue;
    int type = kNormal;
    Wire fields(piece);
    while (!fields.done()) {
      const auto field = fields.varint();
      if ((field >> 3) == kType && (field & 7) == 0) type = static_cast<int>(fields.varint());
      else fields.value(static_cast<int>(field & 7));
    }
    types.push_back(type);
  }
  return types;
}

TokenType token_type(const sentencepiece::SentencePieceProcessor& sp, int id, int proto_type) {
  constexpr int kUserDefined = 4;
  if (sp.IsUnknown(id)) return TokenType::Unknown;
  if (sp.IsControl(id)) return TokenType::Control;
  if (proto_type == kUserDefined) return TokenType::UserDefined;
  if (sp.IsUnused(id)) return TokenType::Unused;
  if (sp.IsByte(id)) return TokenType::Byte;
  return TokenType::Normal;
}

// SentencePiece's add_dummy_prefix puts U+2581 before the first piece.
bool adds_dummy_prefix(const sentencepiece::SentencePieceProcessor& sp) {
  const auto pieces = sp.EncodeAsPieces("a");
  return !pieces.empty() && pieces.front().rfind("\xE2\x96\x81", 0) == 0;
}

}  // namespace

Vocab read_vocab(const ExportTokenizer& tokenizer, std::string_view model_bytes, int vocab_size) {
  const std::string file = tokenizer.model_file.string();
  const auto fail = [&](const std::string& why) { throw std::runtime_error("tokenizer " + file + ": " + why); };
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.LoadFromSerializedProto(model_bytes); !status.ok()) fail(status.ToString());
  std::vector<int> proto_types;
  try {
    proto_types = piece_types(model_bytes);
  } catch (const std::exception& e) {
    fail(e.what());
  }

  const int pieces = sp.GetPieceSize();
  if (static_cast<int>(proto_types.size()) != pieces)
    fail("lists " + std::to_string(proto_types.size()) + " pieces where SentencePiece reads " + std::to_string(pieces));
  if (pieces > vocab_size)
    fail("has " + std::to_string(pieces) + " pieces, more than the model's vocab_size " + std::to_string(vocab_size));
  Vocab v;
  int bytes = 0;
  for (int id = 0; id < pieces; ++id) {
    v.tokens.push_back(sp.IdToPiece(id));
    v.scores.push_back(sp.GetScore(id));
    v.types.push_back(token_type(sp, id, proto_types[id]));
    bytes += v.types.back() == TokenType::Byte;
  }
  for (int id = pieces; id < vocab_size; ++id) {
    v.tokens.push_back("[PAD" + std::to_string(id) + "]");
    v.scores.push_back(-1000.0f);
    v.types.push_back(TokenType::Unused);
  }
  std::set<std::string_view> seen;
  for (const auto& token : v.tokens)
    if (!seen.insert(token).second) fail("token " + token + " appears twice; llama.cpp needs unique tokens");
  if (bytes != 256) fail("has " + std::to_string(bytes) + " byte pieces, not 256: train it with byte_fallback=true");
  v.bos = sp.bos_id();
  v.eos = sp.eos_id();
  v.unk = sp.unk_id();
  v.pad = sp.pad_id();
  if (v.unk < 0) fail("has no unknown piece");
  if (v.eos < 0) fail("has no end-of-sequence piece");
  if (tokenizer.add_bos && v.bos < 0) fail("has no beginning-of-sequence piece, but add_bos is set");
  if (adds_dummy_prefix(sp) != tokenizer.add_space_prefix)
    fail(std::string("was trained with add_dummy_prefix=") + (tokenizer.add_space_prefix ? "false" : "true") +
         " but the export says add_space_prefix=" + (tokenizer.add_space_prefix ? "true" : "false"));
  return v;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string() + ": " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
  return bytes;
}

}  // namespace distill::student
