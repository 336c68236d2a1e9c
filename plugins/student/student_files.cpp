// Reading a student folder back: student.json, the kept records, and the
// safetensors weights.
#include "student_files.h"

#include <cstring>
#include <fstream>

namespace distill::student {

using nlohmann::json;

json shape_json(const ModelShape& s) {
  return {{"vocab_size", s.vocab_size}, {"layers", s.layers},     {"d_model", s.d_model},
          {"heads", s.heads},           {"kv_heads", s.kv_heads}, {"ffn", s.ffn},
          {"max_seq", s.max_seq},       {"tie_embeddings", s.tie_embeddings},
          {"rope_theta", s.rope_theta}, {"rms_eps", s.rms_eps}};
}

ModelShape shape_from_json(const json& j) {
  ModelShape s;
  s.vocab_size = j.at("vocab_size").get<int>();
  s.layers = j.at("layers").get<int>();
  s.d_model = j.at("d_model").get<int>();
  s.heads = j.at("heads").get<int>();
  s.kv_heads = j.at("kv_heads").get<int>();
  s.ffn = j.at("ffn").get<int>();
  s.max_seq = j.at("max_seq").get<int>();
  s.tie_embeddings = j.at("tie_embeddings").get<bool>();
  s.rope_theta = j.at("rope_theta").get<double>();
  s.rms_eps = j.at("rms_eps").get<double>();
  return s;
}

json read_student_json(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "student.json";
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error(file.string() + " is missing: " + dir.string() +
                             " is not a trained student (a pipeline's student sink writes one when training completes)");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(file.string() + " is malformed: " + e.what());
  }
}

Record read_record_json(std::string_view line) {
  const json j = json::parse(line);
  Record record;
  record.id = j.value("id", "");
  const json& messages = j.at("messages");
  if (!messages.is_array() || messages.empty() || messages.back().value("role", "") != "assistant")
    throw std::runtime_error("the record has no final assistant message");
  for (std::size_t i = 0; i + 1 < messages.size(); ++i)
    record.prompt.push_back({messages[i].at("role").get<std::string>(), messages[i].at("content").get<std::string>()});
  record.response = messages.back().at("content").get<std::string>();
  if (const auto lp = j.find("logprobs"); lp != j.end())
    for (const json& token : *lp) {
      TokenLogprob t{token.at("token").get<std::string>(), token.at("logprob").get<double>(), {}};
      for (const json& alternative : token.value("top", json::array()))
        t.top.push_back({alternative.at(0).get<std::string>(), alternative.at(1).get<double>()});
      record.logprobs.push_back(std::move(t));
    }
  return record;
}

std::vector<Record> read_records(const std::filesystem::path& file, std::uint64_t bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::string text(bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(bytes));
  if (static_cast<std::uint64_t>(in.gcount()) != bytes)
    throw std::runtime_error(file.string() + " is shorter than its committed " + std::to_string(bytes) + " bytes");
  std::vector<Record> records;
  std::size_t start = 0;
  std::int64_t line_number = 1;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    try {
      records.push_back(read_record_json(std::string_view(text).substr(start, end - start)));
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(line_number) + ": " + e.what());
    }
    start = end + 1;
    ++line_number;
  }
  return records;
}

std::vector<NamedTensor> read_safetensors(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) { return std::runtime_error(file.string() + " is not a valid safetensors file: " + why); };
  if (bytes.size() < 8) throw bad("shorter than its header length");
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = header_length << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  if (header_length > bytes.size() - 8) throw bad("the header is longer than the file");
  json header;
  try {
    header = json::parse(bytes.substr(8, header_length));
  } catch (const json::exception& e) {
    throw bad(e.what());
  }
  const std::size_t data_start = 8 + header_length;
  std::vector<NamedTensor> out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    NamedTensor t{name, info.at("shape").get<std::vector<std::int64_t>>(), {}};
    const auto offsets = info.at("data_offsets").get<std::vector<std::uint64_t>>();
    const std::string dtype = info.at("dtype").get<std::string>();
    std::uint64_t count = 1;
    for (std::int64_t d : t.shape) count *= static_cast<std::uint64_t>(d);
    if (dtype != "F32") throw bad(name + " has dtype " + dtype + " (the student's exports are F32)");
    if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != count * 4 ||
        data_start + offsets[1] > bytes.size())
      throw bad(name + "'s data offsets do not match its shape or the file");
    t.data.resize(count);
    std::memcpy(t.data.data(), bytes.data() + data_start + offsets[0], count * 4);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace distill::student
