// The student plugin's pieces: its parameters (declared once), the
// settings read from them, the sink, and the generate command.
#pragma once

#include <distill/plugin.h>

#include <filesystem>
#include <string>

#include "chat_tokenizer.h"
#include "student.h"

namespace distill::student {

struct StudentConfig {
  TokenizerTraining tokenizer;
  std::filesystem::path tokenizer_path;  // empty: train one
  ModelShape shape;                      // vocab_size comes from the tokenizer
  TrainSettings train;                   // threads 0: the pipeline's budget
  std::string kd_mode = "auto";          // auto | on | off
  double kd_min_coverage = 0.5;
  double holdout_fraction = 0.05;
  int eval_max_prompts = 200;
  std::string gguf = "f32";  // f32 | f16 | none
};

std::vector<ParamSpec> student_params();
StudentConfig read_config(const Params& params);
// Checks what the declared types cannot (e.g. d_model divisible by heads).
void validate_config(const Params& params);

Component student_sink_component();
Component generate_command();

}  // namespace distill::student
