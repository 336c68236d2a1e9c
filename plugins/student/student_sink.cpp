// The student sink. While records flow it keeps them in
// data/records-r<run>.jsonl (committed at checkpoints, cut back on
// resume). In finish() it trains the tokenizer, builds the examples, trains
// the model with checkpoints that Context::commit() makes durable (a crash
// resumes from the last one), and exports the result to hf/ and model.gguf,
// with student.json describing it.
#include <distill/plugin.h>
#include <distill/record_json.h>
#include <xxhash.h>

#include <cstdio>
#include <fstream>

#include "atomic_file.h"
#include "chat_tokenizer.h"
#include "output_file.h"
#include "student_files.h"
#include "student_sink.h"

namespace distill::student {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string run_tag(std::uint64_t run) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "r%04llu", static_cast<unsigned long long>(run));
  return buffer;
}

// The record's place in the held-out split: a hash of its id, so the split
// is the same in every run and resume.
bool held_out(const std::string& id, double fraction) {
  return static_cast<double>(XXH3_64bits(id.data(), id.size())) / 18446744073709551616.0 < fraction;
}

// The system message most records share, which `generate` adds when none is given.
std::string common_system(const std::vector<Record>& records) {
  std::map<std::string, std::size_t> counts;
  for (const Record& r : records)
    if (!r.prompt.empty() && r.prompt.front().role == "system") ++counts[r.prompt.front().content];
  std::string best;
  std::size_t most = 0;
  for (const auto& [text, count] : counts)
    if (count > most) std::tie(best, most) = std::tie(text, count);
  return most * 2 > records.size() ? best : "";
}

json eval_json(const EvalResult& e) {
  return {{"step", e.step}, {"loss", e.loss}, {"perplexity", e.perplexity}, {"exact_match", e.exact_match},
          {"prompts", e.prompts}};
}

class StudentSink : public Sink {
 public:
  explicit StudentSink(Context& ctx)
      : ctx_(ctx), config_(read_config(ctx.params())), dir_(ctx.params().path("dir")), tag_(run_tag(ctx.run().run)) {
    std::error_code ec;
    fs::create_directories(dir_ / "data", ec);
    if (!ec) fs::create_directories(dir_ / "checkpoints", ec);
    if (ec) throw std::runtime_error("cannot create the student folder " + dir_.string() + ": " + ec.message());
    std::uint64_t committed = 0;
    if (std::optional<std::string> saved = ctx_.state().get(data_key())) committed = std::stoull(*saved);
    data_ = std::make_unique<io::OutputFile>(data_file(), committed);
  }

  unsigned encode_parallelism() const override { return 64; }

  void encode(Batch& batch) override {
    std::vector<std::string> lines(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i)
      if (batch.slots[i].live()) {
        append_json(lines[i], batch.slots[i].record, true);
        lines[i].push_back('\n');
      }
    batch.scratch = std::move(lines);
  }

  void write(Batch& batch) override {
    const auto& lines = std::any_cast<const std::vector<std::string>&>(batch.scratch);
    for (const std::string& line : lines) data_->append(line);
  }

  void flush() override {
    data_->sync();
    io::sync_dir(dir_ / "data");
    ctx_.state().put(data_key(), std::to_string(data_->size()));
  }

  void finish() override {
    if (ctx_.state().get(train_key("done"))) return;  // trained and exported before a crash or stop
    std::vector<Record> records = committed_records();
    if (records.empty()) throw std::runtime_error("no records reached the student: nothing to train on");
    const fs::path tokenizer_file = prepare_tokenizer(records);
    const ChatTokenizer tokenizer(tokenizer_file);
    if (tokenizer.vocab_size() != config_.shape.vocab_size && config_.shape.vocab_size != 0)
      ctx_.log().info("the model's vocabulary follows the tokenizer: " + std::to_string(tokenizer.vocab_size()) + " tokens");
    ModelShape shape = config_.shape;
    shape.vocab_size = tokenizer.vocab_size();

    Data data = build_data(records, tokenizer, shape);
    TrainSettings settings = config_.train;
    settings.threads = settings.threads ? settings.threads : ctx_.threads();
    settings.pad_id = tokenizer.eos();
    settings.eos_id = tokenizer.eos();
    settings.kd = decide_kd(data.coverage);
    const BlasReport blas = torch_backend().check_blas(settings.threads);
    ctx_.log().info("training on " + blas.library + ", " + std::to_string(static_cast<int>(blas.gflops)) +
                    " GFLOP/s at start-up (" + std::to_string(settings.threads) + " threads)");
    if (blas.gflops < 10)
      ctx_.log().warn("matrix products are slow (" + std::to_string(blas.gflops) +
                      " GFLOP/s): libtorch is probably on the reference BLAS; apt-get install libopenblas0-pthread");

    const TrainHooks hooks = make_hooks(tokenizer);
    fs::path resume_from;
    if (std::optional<std::string> saved = ctx_.state().get(train_key("checkpoint"))) resume_from = dir_ / *saved;
    const TrainResult result = torch_backend().train(shape, settings, data.train, data.holdout, data.eval_prompts,
                                                     dir_ / "checkpoints", resume_from, hooks);
    if (!result.completed) return;  // stopped: the last checkpoint stands
    export_student(shape, result, tokenizer, tokenizer_file, records, data, settings, blas);
    ctx_.state().put(train_key("done"), "1");
    ctx_.commit();
    remove_checkpoints();
  }

 private:
  struct Data {
    std::vector<Example> train, holdout;
    std::vector<EvalPrompt> eval_prompts;
    Coverage coverage;
    std::int64_t too_long = 0;
  };

  std::string data_key() const { return "data/" + tag_; }
  std::string train_key(const std::string& what) const { return "train/" + tag_ + "/" + what; }
  fs::path data_file() const { return dir_ / "data" / ("records-" + tag_ + ".jsonl"); }

  // Every run's committed records: a later run trains on the whole curated set.
  std::vector<Record> committed_records() {
    std::vector<Record> records;
    ctx_.state().scan("data/", [&](std::string_view key, std::string_view bytes) {
      const std::string tag(key.substr(5));
      std::vector<Record> more =
          read_records(dir_ / "data" / ("records-" + tag + ".jsonl"), std::stoull(std::string(bytes)));
      records.insert(records.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
      return true;
    });
    return records;
  }

  fs::path prepare_tokenizer(const std::vector<Record>& records) {
    const fs::path file = dir_ / "tokenizer.model";
    if (!config_.tokenizer_path.empty()) {
      if (fs::weakly_canonical(config_.tokenizer_path) != fs::weakly_canonical(file)) {
        std::ifstream in(config_.tokenizer_path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read the tokenizer " + config_.tokenizer_path.string());
        write_file_atomically(file, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
      }
      return file;
    }
    if (ctx_.state().get(train_key("tokenizer"))) return file;
    std::vector<std::string> texts;
    for (const Record& r : records) {
      for (const Message& m : r.prompt) texts.push_back(m.content);
      texts.push_back(r.response);
    }
    ctx_.progress(0, 0, "training the tokenizer");
    train_tokenizer(texts, config_.tokenizer, file);
    ctx_.state().put(train_key("tokenizer"), "1");
    ctx_.commit();
    return file;
  }

  Data build_data(const std::vector<Record>& records, const ChatTokenizer& tokenizer, const ModelShape& shape) {
    Data data;
    for (const Record& record : records) {
      const bool holdout = held_out(record.id, config_.holdout_fraction);
      Coverage& coverage = data.coverage;
      Example example = tokenizer.example(record, coverage);
      if (static_cast<int>(example.tokens.size()) > shape.max_seq) {
        ++data.too_long;
        continue;
      }
      if (!holdout) {
        data.train.push_back(std::move(example));
        continue;
      }
      if (static_cast<int>(data.eval_prompts.size()) < config_.eval_max_prompts)
        data.eval_prompts.push_back({tokenizer.prompt_tokens(record.prompt), record.response});
      data.holdout.push_back(std::move(example));
    }
    ctx_.counter("train_examples") = static_cast<std::int64_t>(data.train.size());
    ctx_.counter("holdout_examples") = static_cast<std::int64_t>(data.holdout.size());
    ctx_.counter("skipped_too_long") = data.too_long;
    if (data.too_long)
      ctx_.log().warn(std::to_string(data.too_long) + " records are longer than max_seq " +
                      std::to_string(shape.max_seq) + " tokens and were left out of training");
    return data;
  }

  bool decide_kd(const Coverage& coverage) {
    ctx_.gauge("kd_coverage", coverage.fraction());
    const std::string mode = config_.kd_mode;
    char fraction[32];
    std::snprintf(fraction, sizeof fraction, "%.1f%%", 100 * coverage.fraction());
    if (mode == "off") return false;
    if (coverage.records_with_logprobs == 0) {
      if (mode == "on") throw std::runtime_error("kd.token_level is on but no record carries teacher logprobs");
      ctx_.log().info("token-level KD: no record carries teacher logprobs; cross-entropy only");
      return false;
    }
    const bool enough = coverage.fraction() >= config_.kd_min_coverage;
    if (!enough && mode == "on")
      throw std::runtime_error(std::string("kd.token_level is on but the teacher's logprobs cover only ") + fraction +
                               " of response tokens (kd.min_coverage " + std::to_string(config_.kd_min_coverage) +
                               "); use a tokenizer closer to the teacher's, or token_level: auto");
    ctx_.log().info(std::string("token-level KD ") + (enough ? "on" : "off") + ": the teacher's logprobs cover " +
                    fraction + " of response tokens");
    return enough;
  }

  TrainHooks make_hooks(const ChatTokenizer& tokenizer) {
    TrainHooks hooks;
    hooks.cancelled = [this] { return ctx_.cancelled(); };
    hooks.progress = [this](std::int64_t step, std::int64_t total) {
      ctx_.progress(static_cast<double>(step), static_cast<double>(total), "steps");
    };
    hooks.gauge = [this](std::string_view name, double value) { ctx_.gauge(name, value); };
    hooks.log = [this](const std::string& message) { ctx_.log().info(message); };
    hooks.checkpointed = [this](std::int64_t step, const fs::path& file) {
      ctx_.state().put(train_key("checkpoint"), fs::relative(file, dir_).string());
      ctx_.counter("checkpoint_step") = step;
      ctx_.commit();
      remove_checkpoints(file);
    };
    hooks.evaluated = [this](const EvalResult& e) {
      ctx_.gauge("eval_loss", e.loss);
      ctx_.gauge("eval_perplexity", e.perplexity);
      ctx_.gauge("eval_exact_match", e.exact_match);
      char key[32];
      std::snprintf(key, sizeof key, "/%012lld", static_cast<long long>(e.step));
      ctx_.state().put(train_key("eval") + key, eval_json(e).dump());
    };
    hooks.decode = [&tokenizer](const std::vector<std::int32_t>& ids) { return tokenizer.decode(ids); };
    return hooks;
  }

  // Removes the checkpoints other than `keep` (all of them when empty).
  void remove_checkpoints(const fs::path& keep = {}) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_ / "checkpoints", ec))
      if (entry.path() != keep) fs::remove(entry.path(), ec);
  }

  void export_student(const ModelShape& shape, const TrainResult& result, const ChatTokenizer& tokenizer,
                      const fs::path& tokenizer_file, const std::vector<Record>& records, const Data& data,
                      const TrainSettings& settings, const BlasReport& blas) {
    ctx_.progress(0, 0, "exporting");
    const ExportTokenizer export_tokenizer{tokenizer_file, chat_template_jinja(), true, tokenizer.adds_space_prefix()};
    write_hf(dir_ / "hf", shape, result.weights, export_tokenizer, settings.eval_max_new_tokens);
    if (config_.gguf != "none")
      write_gguf(dir_ / "model.gguf", shape, result.weights, export_tokenizer,
                 config_.gguf == "f16" ? GgufType::F16 : GgufType::F32);
    json evals = json::array();
    ctx_.state().scan(train_key("eval") + "/", [&](std::string_view, std::string_view value) {
      evals.push_back(json::parse(value));
      return true;
    });
    const json summary = {
        {"model", shape_json(shape)},
        {"default_system", common_system(records)},
        {"chat_template", chat_template_jinja()},
        {"records", records.size()},
        {"train_examples", data.train.size()},
        {"holdout_examples", data.holdout.size()},
        {"skipped_too_long", data.too_long},
        {"kd", {{"used", settings.kd}, {"coverage", data.coverage.fraction()}, {"alpha", settings.kd_alpha},
                {"temperature", settings.kd_temperature}}},
        {"steps", result.steps},
        {"threads", settings.threads},
        {"blas", blas.library},
        {"tokens_per_s", result.tokens_per_s},
        {"final", eval_json(result.final_eval)},
        {"evaluations", evals},
    };
    write_file_atomically(dir_ / "student.json", summary.dump(2) + "\n");
    char line[256];
    std::snprintf(line, sizeof line,
                  "student: %lld steps; held-out loss %.4f, perplexity %.3f, exact match %.1f%% of %lld prompts",
                  static_cast<long long>(result.steps), result.final_eval.loss, result.final_eval.perplexity,
                  100 * result.final_eval.exact_match, static_cast<long long>(result.final_eval.prompts));
    ctx_.log().info(line);
  }

  Context& ctx_;
  StudentConfig config_;
  fs::path dir_;
  std::string tag_;
  std::unique_ptr<io::OutputFile> data_;
};

}  // namespace

Component student_sink_component() { return sink<StudentSink>(student_params()); }

}  // namespace distill::student
