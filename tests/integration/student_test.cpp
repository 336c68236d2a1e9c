// The student sink end to end, through real `distilld` processes and the
// local teacher: prompts -> teacher (with logprobs) -> student. Training
// learns and exports; `distilld generate` answers; a SIGKILL during training
// resumes from the last checkpoint to the same weights as an uninterrupted
// run; the Hugging Face export gives our logits in an independent PyTorch
// forward pass; llama.cpp gives our greedy answers from the GGUF.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "process.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using nlohmann::json;

std::string distilld() { return std::getenv("DISTILLD_BIN"); }
std::string source_root() { return std::getenv("DISTILL_SOURCE_ROOT"); }

std::string pipeline_yaml(const std::string& teacher_url) {
  return "name: student-test\n"
         "state_dir: state\n"
         "engine: {threads: 2, batch_size: 32, checkpoint_every_records: 100}\n"
         "source: {plugin: prompts, path: ../prompts.jsonl, system: \"You spell numbers digit by digit.\"}\n"
         "stages:\n"
         "  - plugin: teacher\n"
         "    base_url: " + teacher_url + "\n"
         "    model: teacher-small\n"
         "    params: {temperature: 0, max_tokens: 64}\n"
         "    logprobs: {top_k: 3}\n"
         "    concurrency: 8\n"
         "sinks:\n"
         "  - plugin: student\n"
         "    dir: student\n"
         "    tokenizer: {train: {vocab_size: 400}}\n"
         "    model: {layers: 2, d_model: 64, heads: 4, kv_heads: 2, ffn: 128, max_seq: 64}\n"
         "    train: {epochs: 32, batch_size: 16, lr: 5e-3, warmup_steps: 20, threads: 1}\n"
         "    eval: {holdout_fraction: 0.1, every_steps: 40, max_new_tokens: 16}\n"
         "    checkpoint_every_steps: 25\n";
}

class StudentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::mt19937_64 rng(7);
    std::string prompts;
    for (int i = 0; i < 240; ++i)
      prompts += "{\"id\": \"p" + std::to_string(i) + "\", \"prompt\": \"Spell " + std::to_string(100 + rng() % 99900) + ".\"}\n";
    write_file(*dir_ / "prompts.jsonl", prompts);
    teacher_ = new TeacherServer(dir_->path(), std::vector<std::string>{"--noise", "0"});
    reference_ = new Finished(train("reference"));
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete teacher_;
    delete dir_;
  }

  static std::filesystem::path pipeline(const std::string& variant) {
    std::filesystem::create_directories(*dir_ / variant);
    write_file(*dir_ / variant / "pipeline.yaml", pipeline_yaml(teacher_->base_url()));
    return *dir_ / variant / "pipeline.yaml";
  }
  static Finished train(const std::string& variant) {
    return run_command(distilld() + " run -q " + pipeline(variant).string());
  }
  static std::filesystem::path student(const std::string& variant) { return *dir_ / variant / "student"; }
  static json summary(const std::string& variant) { return json::parse(read_file(student(variant) / "student.json")); }
  static Finished generate(const std::string& args) {
    return run_command(distilld() + " generate " + student("reference").string() + " " + args);
  }

  static TempDir* dir_;
  static TeacherServer* teacher_;
  static Finished* reference_;
};

TempDir* StudentTest::dir_ = nullptr;
TeacherServer* StudentTest::teacher_ = nullptr;
Finished* StudentTest::reference_ = nullptr;

TEST_F(StudentTest, TrainsOnTheTeachersAnswersAndExports) {
  ASSERT_EQ(reference_->exit_code, 0) << reference_->output;
  const json s = summary("reference");
  const json& evaluations = s.at("evaluations");
  ASSERT_GE(evaluations.size(), 2u);
  // The task's loss plateaus near 1.8 before a sharp drop whose timing is
  // chaotic: with 24 epochs a change of rounding could end training on the
  // plateau (final/first 0.74), while with 32 the final loss was 5-31% of
  // the first over seeds 1-3 and 1 or 2 threads.
  EXPECT_LT(s.at("final").at("loss").get<double>(), 0.5 * evaluations.front().at("loss").get<double>())
      << "held-out loss should fall by half or more: " << evaluations.dump();
  EXPECT_TRUE(s.at("kd").at("used").get<bool>());
  EXPECT_GT(s.at("kd").at("coverage").get<double>(), 0.5);  // most of the teacher's words are single student tokens
  EXPECT_EQ(s.at("default_system").get<std::string>(), "You spell numbers digit by digit.");
  for (const char* file : {"hf/model.safetensors", "hf/config.json", "hf/tokenizer.model", "hf/tokenizer_config.json",
                           "hf/generation_config.json", "model.gguf", "tokenizer.model"})
    EXPECT_TRUE(std::filesystem::exists(student("reference") / file)) << file;
  EXPECT_TRUE(std::filesystem::is_empty(student("reference") / "checkpoints"));
  EXPECT_NE(reference_->output.find("eval_loss"), std::string::npos) << reference_->output;
  EXPECT_NE(reference_->output.find("held-out loss"), std::string::npos) << reference_->output;
}

TEST_F(StudentTest, GenerateAnswersOneOrManyPrompts) {
  const Finished one = generate("'Spell 4721.'");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_FALSE(one.output.empty());
  write_file(*dir_ / "ask.jsonl", "{\"id\": \"a\", \"prompt\": \"Spell 31.\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"Spell 9.\"}]}\n");
  const Finished many = generate("--file " + (*dir_ / "ask.jsonl").string());
  ASSERT_EQ(many.exit_code, 0) << many.output;
  std::istringstream lines(many.output);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    const json answer = json::parse(line);
    EXPECT_TRUE(answer.contains("answer"));
    ++count;
  }
  EXPECT_EQ(count, 2);
  const Finished missing = run_command(distilld() + " generate " + (*dir_ / "nowhere").string() + " 'Spell 1.'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("is not a trained student"), std::string::npos) << missing.output;
}

TEST_F(StudentTest, ASigkillDuringTrainingResumesToTheSameWeights) {
  ASSERT_EQ(reference_->exit_code, 0) << reference_->output;
  const std::filesystem::path file = pipeline("killed");
  const pid_t pid = spawn({distilld(), "run", "-q", file.string()}, (*dir_ / "killed" / "first.log").string());
  bool checkpointed = false;
  for (int i = 0; i < 30000 && !checkpointed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(student("killed") / "checkpoints", ec))
      checkpointed = checkpointed || entry.path().extension() == ".pt";
  }
  ASSERT_TRUE(checkpointed) << read_file(*dir_ / "killed" / "first.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "training ended before the kill: " << read_file(*dir_ / "killed" / "first.log");
  ASSERT_FALSE(std::filesystem::exists(student("killed") / "student.json"));

  const Finished resumed = train("killed");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed training at step"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_file(student("killed") / "hf" / "model.safetensors"),
            read_file(student("reference") / "hf" / "model.safetensors"))
      << "the resumed run's weights differ from the uninterrupted run's";
  EXPECT_EQ(summary("killed").at("final"), summary("reference").at("final"));
}

TEST_F(StudentTest, TheHuggingFaceExportGivesOurLogitsInPyTorch) {
  ASSERT_EQ(reference_->exit_code, 0) << reference_->output;
  const Finished ours = generate("--logits 'Spell 4721.'");
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  const json mine = json::parse(ours.output);
  std::string tokens;
  for (const json& t : mine.at("tokens")) tokens += (tokens.empty() ? "" : ",") + std::to_string(t.get<int>());
  const Finished theirs = run_command("/usr/bin/python3 " + source_root() + "/tests/plugins/student/hf_llama_forward.py " +
                                      (student("reference") / "hf").string() + " --tokens " + tokens);
  ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
  const json reference = json::parse(theirs.output).at("logits");
  ASSERT_EQ(reference.size(), mine.at("logits").size());
  double worst = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    ASSERT_EQ(reference[i].size(), mine.at("logits")[i].size());
    for (std::size_t j = 0; j < reference[i].size(); ++j)
      worst = std::max(worst, std::abs(reference[i][j].get<double>() - mine.at("logits")[i][j].get<double>()));
  }
  EXPECT_LT(worst, 1e-4) << "largest logit difference between distilld and the PyTorch forward pass";
}

TEST_F(StudentTest, LlamaCppGivesOurGreedyAnswersFromTheGguf) {
  ASSERT_EQ(reference_->exit_code, 0) << reference_->output;
  const Finished setup = run_command("bash " + source_root() + "/tests/plugins/student/setup_llama_cpp.sh");
  ASSERT_EQ(setup.exit_code, 0) << setup.output;
  std::string package = setup.output;
  while (!package.empty() && (package.back() == '\n' || package.back() == ' ')) package.pop_back();
  package = package.substr(package.find_last_of('\n') + 1);

  const std::vector<std::string> questions = {"Spell 4721.", "Spell 905.", "Spell 31337.", "Spell 60.", "Spell 88812."};
  // Chat front ends render the exported template and tokenize it with
  // special tokens on: llama.cpp must give the tokens we trained on.
  json texts = json::array(), prompts = json::array();
  std::vector<json> our_tokens;
  std::string ask;
  for (const std::string& q : questions) {
    texts.push_back("<|system|>You spell numbers digit by digit.<|end|><|user|>" + q + "<|end|><|assistant|>");
    const Finished tokens = generate("--logits '" + q + "'");
    ASSERT_EQ(tokens.exit_code, 0) << tokens.output;
    json ids = json::parse(tokens.output).at("tokens");
    ids.erase(ids.begin());  // BOS: llama.cpp adds it, as the GGUF asks
    our_tokens.push_back(ids);
    prompts.push_back(ids);
    ask += json({{"prompt", q}}).dump() + "\n";
  }
  write_file(*dir_ / "llama_texts.json", texts.dump());
  write_file(*dir_ / "llama_prompts.json", prompts.dump());
  write_file(*dir_ / "ask_llama.jsonl", ask);
  const std::string llama = "node " + source_root() + "/tests/plugins/student/llama_cpp_generate.mjs --package " + package +
                            " --model " + (student("reference") / "model.gguf").string() + " ";
  const Finished tokenized = run_command(llama + "tokenize --special --texts " + (*dir_ / "llama_texts.json").string() + " 2>/dev/null");
  ASSERT_EQ(tokenized.exit_code, 0) << tokenized.output;
  std::istringstream tokenized_lines(tokenized.output);
  std::string line;
  for (std::size_t i = 0; std::getline(tokenized_lines, line); ++i) {
    ASSERT_LT(i, our_tokens.size());
    EXPECT_EQ(json::parse(line).at("tokens"), our_tokens[i]) << "llama.cpp tokenizes the template differently: " << questions[i];
  }

  const Finished answers = run_command(llama + "--precise generate --prompts " + (*dir_ / "llama_prompts.json").string() +
                                       " --max-tokens 16 2>/dev/null");
  ASSERT_EQ(answers.exit_code, 0) << answers.output;
  const Finished ours = generate("--max-tokens 16 --file " + (*dir_ / "ask_llama.jsonl").string());
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  std::istringstream theirs_lines(answers.output), our_lines(ours.output);
  std::string theirs_line, our_line;
  std::size_t compared = 0;
  while (std::getline(theirs_lines, theirs_line) && std::getline(our_lines, our_line)) {
    EXPECT_EQ(json::parse(theirs_line).at("text").get<std::string>(), json::parse(our_line).at("answer").get<std::string>())
        << "prompt " << questions[compared];
    ++compared;
  }
  EXPECT_EQ(compared, questions.size());
}

}  // namespace
