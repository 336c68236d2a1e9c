// Deterministic corpus generation (see corpus.h).
#include "corpus.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <stdexcept>
#include <vector>

namespace distill::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kWords = {
    "the", "teacher", "model", "answers", "every", "question", "with", "care", "and", "a", "small",
    "student", "learns", "from", "its", "outputs", "distillation", "keeps", "what", "matters", "most",
    "while", "dropping", "noise", "numbers", "letters", "sum", "of", "two", "digits", "is", "seven"};

std::string sentence(std::mt19937_64& rng, std::size_t bytes) {
  std::string text;
  while (text.size() < bytes) {
    if (!text.empty()) text += ' ';
    text += kWords[rng() % kWords.size()];
  }
  return text;
}

std::string render(std::mt19937_64& rng, const std::string& prompt, const std::string& answer, std::uint64_t index,
                   bool mixed) {
  const unsigned shape = mixed ? static_cast<unsigned>(rng() % 5) : 0;
  json line;
  switch (shape) {
    case 0:
      line = {{"messages", {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", answer}}}}};
      break;
    case 1:
      line = {{"conversations", {{{"from", "human"}, {"value", prompt}}, {{"from", "gpt"}, {"value", answer}}}}};
      break;
    case 2:
      line = {{"instruction", prompt}, {"input", ""}, {"output", answer}};
      break;
    case 3:
      line = {{"id", "chatcmpl-" + std::to_string(index)},
              {"object", "chat.completion"},
              {"created", 1767225600 + index},
              {"model", "teacher-1"},
              {"messages", {{{"role", "user"}, {"content", prompt}}}},
              {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", answer}}}, {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 12}, {"completion_tokens", 40}, {"total_tokens", 52}}}};
      break;
    default:
      line = {{"id", "batch_req_" + std::to_string(index)},
              {"custom_id", "req-" + std::to_string(index)},
              {"response",
               {{"status_code", 200},
                {"request_id", "rq-" + std::to_string(index)},
                {"body",
                 {{"id", "chatcmpl-b" + std::to_string(index)},
                  {"object", "chat.completion"},
                  {"created", 1767225600 + index},
                  {"model", "teacher-2"},
                  {"choices",
                   {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", answer}}}, {"finish_reason", "stop"}}}}}}}},
              {"error", nullptr}};
      break;
  }
  return line.dump();
}

}  // namespace

CorpusStats write_corpus(const std::filesystem::path& file, const CorpusOptions& options) {
  std::ofstream out(file, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  std::vector<std::pair<std::string, std::string>> recent;  // earlier (prompt, answer) pairs to duplicate
  CorpusStats stats;
  std::string line;
  for (std::uint64_t i = 0; i < options.records; ++i) {
    const double roll = chance(rng);
    if (roll < options.malformed_rate) {
      line = R"({"messages": [{"role": "user", "content": "broken line )" + std::to_string(i) + "\"";
      ++stats.malformed;
    } else if (roll < options.malformed_rate + options.duplicate_rate && !recent.empty()) {
      auto [prompt, answer] = recent[rng() % recent.size()];
      if (rng() % 2) {
        for (char& c : answer) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        answer = "  " + answer + " ";
      }
      line = render(rng, prompt, answer, i, options.mixed_formats);
      ++stats.duplicates;
    } else {
      std::string prompt = "question " + std::to_string(i) + ": " + sentence(rng, 40);
      std::string answer = sentence(rng, options.response_bytes);
      line = render(rng, prompt, answer, i, options.mixed_formats);
      if (recent.size() < 4096) recent.emplace_back(std::move(prompt), std::move(answer));
      else recent[rng() % recent.size()] = {std::move(prompt), std::move(answer)};
    }
    out << line << '\n';
    stats.bytes += line.size() + 1;
    ++stats.lines;
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
  return stats;
}

}  // namespace distill::testing
