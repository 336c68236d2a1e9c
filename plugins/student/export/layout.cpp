// Expected Llama tensor names and shapes, and the check of a trainer's
// tensors against them (see layout.h).
#include "layout.h"

#include <cmath>
#include <map>
#include <stdexcept>

namespace distill::student {

void check_model_shape(const ModelShape& s) {
  const auto fail = [](const std::string& why) { throw std::runtime_error("invalid model shape: " + why); };
  if (s.vocab_size <= 0 || s.layers <= 0 || s.d_model <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.ffn <= 0 ||
      s.max_seq <= 0)
    fail("vocab_size, layers, d_model, heads, kv_heads, ffn and max_seq must all be positive");
  if (s.d_model % s.heads != 0)
    fail("d_model " + std::to_string(s.d_model) + " is not a multiple of heads " + std::to_string(s.heads));
  if ((s.d_model / s.heads) % 2 != 0)
    fail("head dimension " + std::to_string(s.d_model / s.heads) + " is odd; rotary embeddings need it even");
  if (s.heads % s.kv_heads != 0)
    fail("heads " + std::to_string(s.heads) + " is not a multiple of kv_heads " + std::to_string(s.kv_heads));
  if (!(s.rope_theta > 0) || !(s.rms_eps > 0)) fail("rope_theta and rms_eps must be positive");
}

std::vector<ExpectedTensor> expected_tensors(const ModelShape& s) {
  check_model_shape(s);
  const std::int64_t v = s.vocab_size, d = s.d_model, f = s.ffn;
  const std::int64_t hd = d / s.heads, q = s.heads * hd, kv = s.kv_heads * hd;
  std::vector<ExpectedTensor> out{{"model.embed_tokens.weight", {v, d}}};
  for (int n = 0; n < s.layers; ++n) {
    const std::string p = "model.layers." + std::to_string(n) + ".";
    out.push_back({p + "input_layernorm.weight", {d}});
    out.push_back({p + "self_attn.q_proj.weight", {q, d}});
    out.push_back({p + "self_attn.k_proj.weight", {kv, d}});
    out.push_back({p + "self_attn.v_proj.weight", {kv, d}});
    out.push_back({p + "self_attn.o_proj.weight", {d, q}});
    out.push_back({p + "post_attention_layernorm.weight", {d}});
    out.push_back({p + "mlp.gate_proj.weight", {f, d}});
    out.push_back({p + "mlp.up_proj.weight", {f, d}});
    out.push_back({p + "mlp.down_proj.weight", {d, f}});
  }
  out.push_back({"model.norm.weight", {d}});
  if (!s.tie_embeddings) out.push_back({"lm_head.weight", {v, d}});
  return out;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

namespace {

void check_tensor(const NamedTensor& t, const ExpectedTensor& want) {
  if (t.shape != want.shape)
    throw std::runtime_error("tensor " + t.name + " has shape " + shape_string(t.shape) + ", expected " +
                             shape_string(want.shape));
  std::size_t elements = 1;
  for (const auto dim : t.shape) elements *= static_cast<std::size_t>(dim);
  if (t.data.size() != elements)
    throw std::runtime_error("tensor " + t.name + " has " + std::to_string(t.data.size()) + " values, its shape " +
                             shape_string(t.shape) + " needs " + std::to_string(elements));
  for (std::size_t i = 0; i < t.data.size(); ++i)
    if (!std::isfinite(t.data[i]))
      throw std::runtime_error("tensor " + t.name + " has a non-finite value at index " + std::to_string(i));
}

}  // namespace

std::vector<const NamedTensor*> checked_tensors(const ModelShape& shape, const std::vector<NamedTensor>& tensors) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const auto& t : tensors)
    if (!by_name.emplace(t.name, &t).second) throw std::runtime_error("tensor " + t.name + " is given twice");
  std::vector<const NamedTensor*> out;
  for (const auto& want : expected_tensors(shape)) {
    const auto it = by_name.find(want.name);
    if (it == by_name.end())
      throw std::runtime_error("tensor " + want.name + " " + shape_string(want.shape) + " is missing");
    check_tensor(*it->second, want);
    out.push_back(it->second);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    const std::string& name = by_name.begin()->first;
    throw std::runtime_error("tensor " + name + " is not part of the model" +
                             (name == "lm_head.weight" ? " (tie_embeddings is true)" : ""));
  }
  return out;
}

}  // namespace distill::student
