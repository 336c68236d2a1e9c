// What a student folder holds besides the exports, and how it is read
// back: student.json (the model's shape, the chat template's default
// system message, training figures), the records kept for training
// (data/records-r<run>.jsonl, in the SDK's record JSON), and the weights of
// hf/model.safetensors.
#pragma once

#include <distill/record.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "student.h"

namespace distill::student {

nlohmann::json shape_json(const ModelShape& shape);
ModelShape shape_from_json(const nlohmann::json& j);

// Reads student.json in `dir`; throws naming the file when it is missing
// (not a trained student) or malformed.
nlohmann::json read_student_json(const std::filesystem::path& dir);

// The fields training needs (id, messages, response, logprobs) of one line
// of the SDK's record JSON; throws std::runtime_error on a malformed line.
Record read_record_json(std::string_view line);

// The first `bytes` bytes of `file`, one record per line.
std::vector<Record> read_records(const std::filesystem::path& file, std::uint64_t bytes);

// The F32 tensors of a safetensors file.
std::vector<NamedTensor> read_safetensors(const std::filesystem::path& file);

}  // namespace distill::student
