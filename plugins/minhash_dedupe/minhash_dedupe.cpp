// minhash_dedupe: drops near-duplicates (MinHash LSH) of records kept
// earlier, in this run or any earlier run of the pipeline. Shingling and
// signatures run in the parallel part; the index is queried and filled in
// the serial part, in source order, so the first occurrence is the one
// kept and the result does not depend on the thread count.
//
// The buckets of the first indexed records (as many as index_mb holds) are
// kept in memory (minhash::BandIndex); the instance's checkpointed state
// keeps only their band hashes, one key per batch, to rebuild that index
// when the stage starts. Once a record does not fit, its buckets and those
// of every later record are keys of the state, so the records in memory
// are always the first ones and a restart rebuilds exactly the index an
// uninterrupted run had. A Bloom filter of the state's buckets (filter_mb),
// filled from the state when the stage starts, spares the lookups of
// buckets that do not exist (most of them).
//
// State layout (keys of the instance's state; numbers little-endian in
// values, big-endian in keys):
//   "cfg"                           the index-defining parameters, as text
//   "seq"                           u64: number of the next indexed record
//   'h' first(u64)                  band hashes (bands u64 each; 0: the bucket
//                                   was full) of records first, first + 1, ...
//                                   indexed in memory
//   'b' band(u16) band_hash(u64)    up to max_bucket record numbers (u64 each)
//   'e' number(u64)                 origin(u64) id_size(u32) id payload(u32...)
//   'c' number(u64)                 u64: size of the cluster it heads (absent: 1)
// The payload is the sorted shingle hashes (verify: exact) or the
// signature (verify: estimate or none). The origin hashes the run number
// with the record's source uri and offset: a record replayed after a crash
// that finds its own entry (same id, same origin, written before this
// process started) is not its own duplicate.
#include <distill/plugin.h>

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <stdexcept>

#include "minhash.h"
#include "text_normalize.h"

namespace {

using namespace distill;

enum class Verify { Exact, Estimate, None };

constexpr minhash::Banding kDefaultBanding{14, 8};

// In an 'h' key, the band hash of a band in whose bucket the record is not listed.
constexpr std::uint64_t kNotListed = 0;

void append_be(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void append_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t read_be(std::string_view bytes, std::size_t at, int size) {
  std::uint64_t value = 0;
  for (int i = 0; i < size; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

std::uint64_t read_le(std::string_view bytes, std::size_t at, int size) {
  std::uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

std::string numbered_key(char kind, std::uint64_t number) {
  std::string key(1, kind);
  append_be(key, number, 8);
  return key;
}

minhash::Banding banding(const Params& params) {
  if (params.has("lsh_threshold"))
    return minhash::banding_for_threshold(params.number("lsh_threshold"),
                                          static_cast<std::size_t>(params.integer("hashes")));
  return {params.has("bands") ? static_cast<std::size_t>(params.integer("bands")) : kDefaultBanding.bands,
          params.has("rows") ? static_cast<std::size_t>(params.integer("rows")) : kDefaultBanding.rows};
}

// What the parallel part leaves for the serial part, per slot.
struct Prepared {
  std::vector<std::uint32_t> payload;  // what an index entry stores
  std::vector<std::uint64_t> bands;    // empty when the record has no text
};

// An index entry, decoded.
struct Entry {
  std::uint64_t origin = 0;
  std::string id;
  std::vector<std::uint32_t> payload;
};

class MinhashDedupe : public Stage {
 public:
  explicit MinhashDedupe(Context& ctx)
      : ctx_(ctx),
        state_(ctx.state()),
        response_only_(ctx.params().str("text") == "response"),
        options_(text::normalize_options(ctx.params().strings("normalize"))),
        shingling_{ctx.params().str("shingles") == "char" ? minhash::Unit::Char : minhash::Unit::Word,
                   static_cast<std::size_t>(ctx.params().integer("shingle_size")),
                   static_cast<std::uint64_t>(ctx.params().integer("seed"))},
        permutations_(static_cast<std::size_t>(ctx.params().integer("hashes")), shingling_.seed),
        banding_(banding(ctx.params())),
        verify_(verify_mode(ctx.params().str("verify"))),
        threshold_(ctx.params().number("threshold")),
        max_bucket_(static_cast<std::size_t>(ctx.params().integer("max_bucket"))),
        index_(static_cast<std::size_t>(ctx.params().integer("index_mb")) << 20),
        filter_bytes_(static_cast<std::size_t>(ctx.params().integer("filter_mb")) << 20) {
    validate(ctx.params());
    if (ctx.params().has("lsh_threshold"))
      ctx.log().info("lsh_threshold " + ctx.params().str("lsh_threshold") + ": " + std::to_string(banding_.bands) +
                     " bands x " + std::to_string(banding_.rows) + " rows");
    const std::string config = index_config(ctx.params());
    if (std::optional<std::string> stored = state_.get("cfg")) {
      if (*stored != config)
        throw std::runtime_error(config_change(*stored, config) +
                                 ": the index depends on them (give the stage a new id to start a new index)");
    } else {
      state_.put("cfg", config);
    }
    if (std::optional<std::string> seq = state_.get("seq")) next_seq_ = read_le(*seq, 0, 8);
    first_seq_ = next_seq_;
    load_index();
  }

  static void validate(const Params& params) {
    if (params.has("lsh_threshold") && (params.has("bands") || params.has("rows")))
      throw ParamError("lsh_threshold", "set either lsh_threshold or bands and rows, not both");
    const minhash::Banding b = banding(params);
    const std::int64_t hashes = params.integer("hashes");
    if (static_cast<std::int64_t>(b.bands * b.rows) > hashes)
      throw ParamError(params.has("bands") ? "bands" : params.has("rows") ? "rows" : "hashes",
                       "bands x rows = " + std::to_string(b.bands) + " x " + std::to_string(b.rows) + " = " +
                           std::to_string(b.bands * b.rows) + " exceeds hashes (" + std::to_string(hashes) + ")");
  }

  unsigned prepare_parallelism() const override { return 64; }

  void prepare(Batch& batch) override {
    std::vector<Prepared> prepared(batch.slots.size());
    std::vector<std::uint32_t> signature(permutations_.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      if (!batch.slots[i].live()) continue;
      std::vector<std::uint32_t> shingles = minhash::shingle_hashes(text_of(batch.slots[i].record), shingling_);
      if (shingles.empty()) continue;
      permutations_.signature(shingles, signature.data());
      Prepared& p = prepared[i];
      p.bands.resize(banding_.bands);
      for (std::size_t b = 0; b < banding_.bands; ++b)
        p.bands[b] = minhash::band_hash(signature.data(), b, banding_.rows, shingling_.seed);
      p.payload = verify_ == Verify::Exact ? std::move(shingles) : signature;
    }
    batch.scratch = std::move(prepared);
  }

  void process(Batch& batch) override {
    const auto& prepared = std::any_cast<const std::vector<Prepared>&>(batch.scratch);
    const std::uint64_t seq_before = next_seq_;
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      Slot& slot = batch.slots[i];
      if (!slot.live()) continue;
      if (prepared[i].bands.empty()) {
        ++no_text_;
        continue;
      }
      deduplicate(slot, prepared[i]);
    }
    store_band_hashes();
    if (next_seq_ != seq_before) {
      std::string value;
      append_le(value, next_seq_, 8);
      state_.put("seq", value);
      warn_if_filter_full();
    }
    flush_counters();
  }

 private:
  struct Match {
    std::uint64_t seq = 0;
    std::string id;
    double jaccard = -1;
  };

  static Verify verify_mode(const std::string& name) {
    return name == "exact" ? Verify::Exact : name == "estimate" ? Verify::Estimate : Verify::None;
  }

  // The parameters an index depends on: a later run must use the same ones.
  std::string index_config(const Params& params) const {
    std::string normalize;
    const std::pair<const char*, bool> steps[] = {{"nfkc", options_.nfkc},
                                                  {"casefold", options_.casefold},
                                                  {"whitespace", options_.whitespace},
                                                  {"punctuation", options_.punctuation},
                                                  {"digits", options_.digits}};
    for (const auto& [name, on] : steps)
      if (on) normalize += normalize.empty() ? name : std::string(",") + name;
    return "text=" + params.str("text") + " normalize=[" + normalize + "] shingles=" + params.str("shingles") + ":" +
           std::to_string(shingling_.size) + " hashes=" + std::to_string(permutations_.size()) +
           " seed=" + std::to_string(shingling_.seed) + " bands=" + std::to_string(banding_.bands) + "x" +
           std::to_string(banding_.rows) + " payload=" + (verify_ == Verify::Exact ? "shingles" : "signature");
  }

  // "the index was built with seed=1, this run has seed=2", naming only what differs.
  static std::string config_change(const std::string& stored, const std::string& config) {
    auto words = [](const std::string& text) {
      std::vector<std::string> out;
      for (std::size_t at = 0; at <= text.size();) {
        const std::size_t end = std::min(text.find(' ', at), text.size());
        out.push_back(text.substr(at, end - at));
        at = end + 1;
      }
      return out;
    };
    const std::vector<std::string> was = words(stored);
    const std::vector<std::string> now = words(config);
    std::string before, after;
    for (std::size_t i = 0; i < std::max(was.size(), now.size()); ++i) {
      const std::string a = i < was.size() ? was[i] : "";
      const std::string b = i < now.size() ? now[i] : "";
      if (a == b) continue;
      before += (before.empty() ? "" : " ") + a;
      after += (after.empty() ? "" : " ") + b;
    }
    return "the index was built with " + before + ", this run has " + after;
  }

  std::string text_of(const Record& record) const {
    if (response_only_) return text::normalize(record.response, options_);
    std::string out;
    for (const Message& m : record.prompt) {
      if (m.role == "system" || m.role == "developer") continue;  // often shared by every record
      out += text::normalize(m.content, options_);
      out += ' ';
    }
    out += text::normalize(record.response, options_);
    return out;
  }

  std::uint64_t origin_of(const Record& record) const {
    std::string key;
    append_le(key, ctx_.run().run, 8);
    append_le(key, static_cast<std::uint64_t>(record.provenance.offset), 8);
    key += record.provenance.uri;
    return XXH3_64bits(key.data(), key.size());
  }

  static std::string bucket_key(std::size_t band, std::uint64_t hash) {
    std::string key(1, 'b');
    append_be(key, band, 2);
    append_be(key, hash, 8);
    return key;
  }

  Entry read_entry(std::uint64_t seq) {
    std::optional<std::string> value = state_.get(numbered_key('e', seq));
    if (!value || value->size() < 12)
      throw std::runtime_error("the index is damaged: entry " + std::to_string(seq) + " is missing or short");
    Entry entry;
    entry.origin = read_le(*value, 0, 8);
    const std::size_t id_size = read_le(*value, 8, 4);
    entry.id = value->substr(12, id_size);
    for (std::size_t at = 12 + id_size; at + 4 <= value->size(); at += 4)
      entry.payload.push_back(static_cast<std::uint32_t>(read_le(*value, at, 4)));
    return entry;
  }

  // Reads the buckets of the state into the Bloom filter and the band
  // hashes of the records indexed in memory into the in-memory index. When
  // index_mb is now smaller than it was, the first record that no longer
  // fits and all later ones move to the state's buckets.
  void load_index() {
    const auto start = std::chrono::steady_clock::now();
    state_.scan("b", [&](std::string_view key, std::string_view) {
      filter().add(read_be(key, 1, 2), read_be(key, 3, 8));
      ++filter_pairs_;
      return true;
    });
    const std::size_t bands = banding_.bands;
    if (!filter_) index_.make_room(next_seq_ * bands);  // every record is in memory: size the table once
    std::uint64_t in_memory = 0;
    std::vector<std::pair<std::string, std::uint64_t>> overflow;  // 'h' key, how many of its records stay
    state_.scan("h", [&](std::string_view key, std::string_view hashes) {
      const std::uint64_t first = key.size() == 9 ? read_be(key, 1, 8) : 0;
      const std::uint64_t records = hashes.size() / (8 * bands);
      if (key.size() != 9 || hashes.empty() || hashes.size() % (8 * bands) != 0 || first + records > next_seq_)
        throw std::runtime_error("the index is damaged: the band hashes of record " + std::to_string(first) +
                                 " (a key of " + std::to_string(key.size()) + " bytes) have " +
                                 std::to_string(hashes.size()) + " bytes");
      if (!overflow.empty()) {
        overflow.emplace_back(key, 0);
        return true;
      }
      for (std::uint64_t r = 0; r < records; ++r) {
        if (!index_.make_room(bands)) {
          overflow.emplace_back(key, r);
          return true;
        }
        for (std::size_t b = 0; b < bands && r + 1 < records; ++b)  // the table is larger than the caches
          index_.prefetch(b, read_le(hashes, ((r + 1) * bands + b) * 8, 8));
        for (std::size_t b = 0; b < bands; ++b)
          if (const std::uint64_t hash = read_le(hashes, (r * bands + b) * 8, 8); hash != kNotListed)
            index_.add(b, hash, static_cast<std::uint32_t>(first + r));
        ++in_memory;
      }
      return true;
    });
    std::uint64_t moved = 0;
    for (const auto& [key, kept] : overflow) moved += move_to_buckets(key, kept);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (next_seq_ > 0)
      ctx_.log().info("index of " + std::to_string(next_seq_) + " records read in " + seconds + " s: the buckets of " +
                      std::to_string(in_memory) + " in memory, " + std::to_string(filter_pairs_) +
                      " buckets of the state in the filter");
    if (moved > 0)
      ctx_.log().warn("index_mb " + std::to_string(ctx_.params().integer("index_mb")) + " holds fewer records than " +
                      "the last run indexed in memory: the buckets of " + std::to_string(moved) +
                      " records moved to the state");
    if (filter_)
      ctx_.log().warn("this index keeps buckets in the state, so new records' buckets go there too, which is about "
                      "half as fast as in memory (a new stage id starts a new index)");
    warn_if_filter_full();
  }

  // Moves the records of the 'h' `key` after the first `kept` from memory
  // to the state's buckets; returns how many. Each is listed where it was
  // listed in memory: its bucket held fewer than max_bucket records then,
  // all of them earlier ones, and holds no more now.
  std::uint64_t move_to_buckets(const std::string& key, std::uint64_t kept) {
    const std::string hashes = state_.get(key).value_or(std::string());
    const std::size_t record_bytes = 8 * banding_.bands;
    const std::uint64_t first = read_be(key, 1, 8);
    const std::uint64_t records = hashes.size() / record_bytes;
    for (std::uint64_t r = kept; r < records; ++r)
      for (std::size_t b = 0; b < banding_.bands; ++b) {
        const std::uint64_t hash = read_le(hashes, r * record_bytes + b * 8, 8);
        if (hash == kNotListed) continue;
        std::string bucket = state_.get(bucket_key(b, hash)).value_or(std::string());
        append_le(bucket, first + r, 8);
        state_.put(bucket_key(b, hash), bucket);
        filter().add(b, hash);
        ++filter_pairs_;
      }
    if (kept > 0)
      state_.put(key, std::string_view(hashes).substr(0, kept * record_bytes));
    else
      state_.erase(key);
    return records - kept;
  }

  minhash::BandFilter& filter() {
    if (!filter_) filter_.emplace(filter_bytes_);
    return *filter_;
  }

  void deduplicate(Slot& slot, const Prepared& p) {
    buckets_.resize(p.bands.size());
    listed_.resize(p.bands.size());
    candidates_.clear();
    for (std::size_t b = 0; b < p.bands.size(); ++b) index_.prefetch(b, p.bands[b]);
    for (std::size_t b = 0; b < p.bands.size(); ++b) {
      const std::size_t before = candidates_.size();
      index_.find(b, p.bands[b], candidates_);
      if (filter_ && filter_->may_contain(b, p.bands[b]))
        buckets_[b] = state_.get(bucket_key(b, p.bands[b])).value_or(std::string());
      else
        buckets_[b].clear();
      for (std::size_t at = 0; at + 8 <= buckets_[b].size(); at += 8) candidates_.push_back(read_le(buckets_[b], at, 8));
      listed_[b] = candidates_.size() - before;
    }
    std::sort(candidates_.begin(), candidates_.end());
    candidates_.erase(std::unique(candidates_.begin(), candidates_.end()), candidates_.end());

    const std::uint64_t origin = origin_of(slot.record);
    Match best;
    for (std::uint64_t seq : candidates_) {
      Entry entry = read_entry(seq);
      if (seq < first_seq_ && entry.origin == origin && entry.id == slot.record.id) continue;  // itself, replayed
      ++checked_;
      const double j = verify_ == Verify::Exact ? minhash::jaccard(p.payload, entry.payload)
                                                : minhash::estimated_jaccard(p.payload, entry.payload);
      if (verify_ != Verify::None && j < threshold_) {
        ++below_threshold_;
        continue;
      }
      if (j > best.jaccard) best = {seq, std::move(entry.id), j};
    }
    if (best.jaccard >= 0)
      drop(slot, best);
    else
      insert(slot, p, origin);
  }

  void drop(Slot& slot, const Match& match) {
    const std::string key = numbered_key('c', match.seq);
    const std::optional<std::string> stored = state_.get(key);
    const std::uint64_t size = (stored ? read_le(*stored, 0, 8) : 1) + 1;
    std::string value;
    append_le(value, size, 8);
    state_.put(key, value);
    slot.drop_reason = "near_duplicate";
    slot.record.annotations["near_duplicate_of"] = match.id;
    slot.record.annotations["jaccard"] = std::round(match.jaccard * 1e4) / 1e4;
    slot.record.annotations["cluster_size"] = static_cast<double>(size);
  }

  void insert(const Slot& slot, const Prepared& p, std::uint64_t origin) {
    const std::uint64_t seq = next_seq_++;
    std::string entry;
    entry.reserve(12 + slot.record.id.size() + 4 * p.payload.size());
    append_le(entry, origin, 8);
    append_le(entry, slot.record.id.size(), 4);
    entry += slot.record.id;
    for (std::uint32_t v : p.payload) append_le(entry, v, 4);
    state_.put(numbered_key('e', seq), entry);
    // In memory only while no bucket is in the state (see the top of the file).
    if (!filter_ && seq <= std::numeric_limits<std::uint32_t>::max() && index_.make_room(p.bands.size())) {
      if (band_hashes_.empty()) band_hashes_first_ = seq;
      for (std::size_t b = 0; b < p.bands.size(); ++b) {
        const bool listed = listed_[b] < max_bucket_;
        if (listed) index_.add(b, p.bands[b], static_cast<std::uint32_t>(seq));
        append_le(band_hashes_, listed ? p.bands[b] : kNotListed, 8);
      }
      return;
    }
    if (!filter_) warn_index_full(seq);
    filter_pairs_ += p.bands.size();
    for (std::size_t b = 0; b < p.bands.size(); ++b) {
      filter().add(b, p.bands[b]);
      if (listed_[b] >= max_bucket_) continue;
      append_le(buckets_[b], seq, 8);
      state_.put(bucket_key(b, p.bands[b]), buckets_[b]);
    }
  }

  // Writes the band hashes of the records indexed in memory since the last call.
  void store_band_hashes() {
    if (band_hashes_.empty()) return;
    state_.put(numbered_key('h', band_hashes_first_), band_hashes_);
    band_hashes_.clear();
  }

  // When the first record's buckets go to the state: the in-memory index takes no more.
  void warn_index_full(std::uint64_t indexed) {
    const std::size_t suggested_mb = (minhash::BandIndex::bytes_for(2 * index_.pairs()) >> 20) + 1;
    ctx_.log().warn("the in-memory index (index_mb " + std::to_string(ctx_.params().integer("index_mb")) +
                    ") takes no more records after " + std::to_string(indexed) +
                    ": the buckets of later records, in this run and later ones, are kept in the state, which is "
                    "about half as fast; a new index (a new stage id) with index_mb " +
                    std::to_string(suggested_mb) + " would hold twice this one");
  }

  // Once, when the filter holds more buckets than it can at ~1% false
  // positives: from then on more lookups of absent buckets reach RocksDB.
  void warn_if_filter_full() {
    if (filter_warned_ || !filter_ || minhash::BandFilter::bytes_for(filter_pairs_) <= filter_->bytes()) return;
    filter_warned_ = true;
    const std::size_t suggested_mb = (minhash::BandFilter::bytes_for(2 * filter_pairs_) >> 20) + 1;
    ctx_.log().warn("the Bloom filter (filter_mb " + std::to_string(filter_->bytes() >> 20) + ") holds " +
                    std::to_string(filter_pairs_) +
                    " buckets, more than it can at 1% false positives: lookups of absent buckets will reach "
                    "the state more often and slow the stage down; filter_mb " +
                    std::to_string(suggested_mb) + " would leave room for twice this index");
  }

  void flush_counters() {
    ctx_.counter("candidates") += checked_;
    ctx_.counter("below_threshold") += below_threshold_;
    ctx_.counter("no_text") += no_text_;
    checked_ = below_threshold_ = no_text_ = 0;
  }

  Context& ctx_;
  KeyValue& state_;
  bool response_only_;
  text::NormalizeOptions options_;
  minhash::Shingling shingling_;
  minhash::Permutations permutations_;
  minhash::Banding banding_;
  Verify verify_;
  double threshold_;
  std::size_t max_bucket_;
  minhash::BandIndex index_;  // the buckets of the records whose band hashes are 'h' keys
  std::size_t filter_bytes_;
  std::optional<minhash::BandFilter> filter_;  // every bucket in the state is in it; made with the first one
  std::uint64_t filter_pairs_ = 0;  // buckets added to it (an upper bound on the distinct ones)
  bool filter_warned_ = false;
  std::string band_hashes_;  // of the records indexed in memory in this batch, from band_hashes_first_
  std::uint64_t band_hashes_first_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t first_seq_ = 0;  // entries numbered below were written before this process
  std::vector<std::string> buckets_;     // per band of the record at hand: its bucket in the state
  std::vector<std::size_t> listed_;      // per band: records its bucket lists, in memory and in the state
  std::vector<std::uint64_t> candidates_;
  std::int64_t checked_ = 0;
  std::int64_t below_threshold_ = 0;
  std::int64_t no_text_ = 0;
};

}  // namespace

DISTILL_PLUGIN(
    "minhash_dedupe", "drops near-duplicates (MinHash LSH, optionally verified by Jaccard), across runs",
    distill::stage<MinhashDedupe>({
        distill::param::Choice("text", "what is compared", {"prompt+response", "response"})
            .default_value("prompt+response"),
        distill::text::normalize_param(),
        distill::param::Choice("shingles", "shingle unit: word n-grams or character n-grams", {"word", "char"})
            .default_value("word"),
        distill::param::Int("shingle_size", "words (or characters) per shingle").default_value("5").min(1).max(1000),
        distill::param::Int("hashes", "MinHash permutations per signature").default_value("112").min(1).max(1024),
        distill::param::Int("bands", "LSH bands (default 14, or derived from lsh_threshold)").min(1).max(1024),
        distill::param::Int("rows", "signature values per band (default 8, or derived from lsh_threshold)")
            .min(1)
            .max(1024),
        distill::param::Double("lsh_threshold", "derive bands and rows (bands x rows <= hashes) for this Jaccard")
            .min(0.01)
            .max(0.99),
        distill::param::Int("seed", "seed of the shingle hashes and permutations").default_value("1").min(0),
        distill::param::Choice("verify",
                               "how a candidate is confirmed: exact Jaccard of stored shingle sets, Jaccard estimated "
                               "from stored signatures, or none (a shared band is enough)",
                               {"exact", "estimate", "none"})
            .default_value("exact"),
        distill::param::Double("threshold", "Jaccard at or above which a verified candidate is a duplicate")
            .default_value("0.8")
            .min(0)
            .max(1),
        distill::param::Int("max_bucket", "records listed per LSH bucket; later ones are indexed in their other bands")
            .default_value("16")
            .min(1)
            .max(4096),
        distill::param::Int("index_mb",
                            "memory for the buckets of the first indexed records, taken as the index grows (at 14 "
                            "bands 1024 MB hold about 3 million records); the buckets of later records are kept "
                            "in the state, which is about half as fast")
            .default_value("1024")
            .min(1)
            .max(65536),
        distill::param::Int("filter_mb",
                            "memory for the Bloom filter that skips lookups of empty buckets kept in the state "
                            "(1% false positives up to ~4 million records' buckets per 64 MB at 14 bands)")
            .default_value("128")
            .min(1)
            .max(65536),
    }))
