// The control plane of distilld: the public contract between the daemon
// (`distilld serve`) and its clients (`distillctl`, or any Thrift client).
//
// Transport: framed (TFramedTransport), binary protocol (TBinaryProtocol),
// on the UNIX socket <state>/control.sock, or on TCP when the daemon is
// started with --tcp; a TCP connection must call authenticate() first.
// Frames over 4 MiB are refused.
//
// Versioning: field ids are only ever added, never reused or renumbered;
// a call or a field a client does not know is ignored by it. API_VERSION
// (also in health()) grows by one with each addition.
namespace cpp distill.rpc
namespace py distill_rpc

const i32 API_VERSION = 3

// What a pipeline is doing. STOPPED, PAUSED and FAILED runs resume from
// their last checkpoint at the next start (or resume).
enum PipelineState {
  SUBMITTED = 1,  // stored, never started
  STARTING = 2,   // a worker is being started, or waits to restart after a crash
  RUNNING = 3,
  STOPPING = 4,   // asked to stop or pause; the worker is committing a checkpoint
  PAUSED = 5,
  STOPPED = 6,
  COMPLETED = 7,
  FAILED = 8,
}

enum ErrorKind {
  NOT_FOUND = 1,  // no pipeline (or plugin, or run) of that name
  CONFLICT = 2,   // not now: e.g. the pipeline is running
  INVALID = 3,    // the request itself is wrong (e.g. a bad name or limit)
  INTERNAL = 4,   // the daemon could not do it (e.g. its store failed)
  UNAUTHENTICATED = 5,  // a TCP connection that has not called authenticate() with the token (API 2)
}

// Every error a call reports: `message` says what happened and what to do.
exception OperationError {
  1: string message,
  2: ErrorKind kind,
}

// One problem in a pipeline file, as `distilld validate` prints it.
struct Diagnostic {
  1: string file,
  2: i32 line,    // 1-based; 0 when the problem has no place in the file
  3: i32 column,
  4: string key,  // e.g. "stages[1].threshold"
  5: string message,
  6: string text, // "file:line:column: key: message"
}

exception InvalidPipeline {
  1: string message,  // "3 errors in FILE" and the first of them
  2: list<Diagnostic> diagnostics,
}

struct PipelineInfo {
  1: string name,
  2: i64 revision,            // 1, 2, ...: each changed submission adds one
  3: PipelineState state,
  4: i64 run,                 // the current or last run's number; 0 before the first
  5: string description,
  6: string file,             // where it was submitted from; relative paths start at its folder
  7: double progress,         // 0..1 of the source's input, -1 when unknown
  8: i64 records_read,        // by the run, across resumptions
  9: string error,            // why it failed (or crashed), and what to do
  10: i32 consecutive_crashes,
  11: i64 submitted_ms,       // of this revision, milliseconds since the epoch
  12: i64 updated_ms,         // the last change of state
  13: i32 threads,            // threads the running worker was given
}

// A table a plugin publishes for its step (e.g. the teacher's Batch API
// batches: id, state, request counts, times): headings, and rows of text
// cells, one per heading. (API 3)
struct Table {
  1: string name,
  2: list<string> columns,
  3: list<list<string>> rows,
}

struct StepStats {
  1: string step,    // "source", a stage's id, or "sink:" + id
  2: string plugin,
  3: i64 records_in,
  4: i64 kept,
  5: i64 dropped,
  6: i64 errors,
  7: i64 busy_ns,
  8: map<string, i64> drops_by_reason,
  9: map<string, i64> counters,   // the plugin's own
  10: map<string, double> gauges, // the plugin's latest values (e.g. a trainer's loss)
  11: optional list<Table> tables, // the plugin's latest tables, by name; unset when it has none (API 3)
}

struct PipelineStatus {
  1: PipelineInfo info,
  2: list<StepStats> steps,      // in pipeline order
  3: i64 bytes_done,             // the source's progress
  4: i64 bytes_total,            // 0 when unknown
  5: double elapsed_s,           // of the worker's current (or last) execution
  6: double records_per_s,       // over that execution
  7: i64 checkpoints,            // committed by that execution
  8: bool resumed,               // that execution continued from a checkpoint
  9: string finishing_step,      // set while a sink's finish() runs
  10: double finish_done,
  11: double finish_total,
  12: string finish_unit,
  13: bool live,                 // true: from the running worker; false: as last recorded
  14: i64 bytes_read_here,       // bytes the source read in that execution (API 2)
}

struct Message {
  1: string role,
  2: string content,
}

struct TeacherInfo {
  1: string model,
  2: string endpoint,
  3: string response_id,
  4: string finish_reason,
}

struct Provenance {
  1: string source,
  2: string uri,
  3: i64 offset,
  4: i64 collected_at_ms,
  5: string request_id,
  6: string terms,
}

struct Record {
  1: string id,
  2: list<Message> messages,            // the prompt, then the assistant's response
  3: TeacherInfo teacher,
  4: Provenance provenance,
  5: map<string, string> annotations,   // numbers as their decimal text
}

// A record the run kept as a sample: the first N dropped per step and reason,
// and the first N each sink kept (step "sink:ID", reason "kept").
struct Sample {
  1: string step,
  2: string reason,
  3: i64 seq,           // the drop's ordinal within (step, reason)
  4: Record record,
  5: string record_json, // the record exactly as stored (the jsonl sink's format)
}

struct SampleQuery {
  1: string pipeline,
  2: i64 run = 0,        // 0: the latest run
  3: string step = "",   // "": every step
  4: string reason = "", // "": every reason
  5: i32 limit = 20,     // 1..1000
}

struct ParamInfo {
  1: string name,
  2: string type,            // string, int, number, bool, path, list of strings, choice, object, map, any
  3: string description,
  4: bool is_required,
  5: optional string default_value,
  6: optional double min_value,
  7: optional double max_value,
  8: list<string> choices,
  9: list<ParamInfo> fields, // of an object
}

struct ComponentInfo {
  1: string kind,                 // source, stage, sink or command
  2: list<ParamInfo> params,
  3: string command_name,         // kind command: `distilld <command_name> ...`
  4: string command_usage,
}

struct PluginInfo {
  1: string name,
  2: string description,
  3: string file,
  4: list<ComponentInfo> components,
}

struct PluginList {
  1: list<PluginInfo> plugins,
  2: list<string> not_loaded,  // files found but refused, each with the reason
}

struct Health {
  1: string version,                 // distilld's version
  2: i32 api_version,                // API_VERSION of the daemon
  3: i32 sdk_abi,                    // the plugin ABI it loads
  4: double uptime_s,
  5: map<string, i32> pipelines_by_state,  // state name (lower case) -> count
  6: i32 workers,                    // worker processes running
  7: i32 thread_budget,              // threads shared by the running pipelines
  8: string state_dir,
}

struct SubmitRequest {
  1: string yaml,        // the pipeline file's text (at most 1 MiB)
  2: string file,        // its absolute path: names it in messages, and relative paths start at its folder
  3: bool force = false, // replace the pipeline even while it runs (the run is stopped first)
}

struct SubmitResult {
  1: string name,
  2: i64 revision,
  3: bool changed,   // false: the same text was already the current revision
}

struct ValidateResult {
  1: string name,
  2: string source_plugin,
  3: i32 stages,
  4: i32 sinks,
}

struct StartOptions {
  1: bool new_run = false,  // start the next run even though the last completed, or abandon an interrupted one
}

struct LogLine {
  1: i64 seq,        // 1, 2, ... within the pipeline's log since the daemon started
  2: i64 time_ms,
  3: string level,   // info, warning, error
  4: string step,    // "" for the engine and the daemon
  5: string message,
}

struct RescanResult {
  1: list<string> added,       // plugins loaded by this rescan
  2: list<string> not_loaded,  // every refused file, with the reason
}

service Distill {
  // The first call on a TCP connection: the daemon's token (the text of its
  // token file). Every other call before it fails with UNAUTHENTICATED
  // (health(), which declares no error, with an application error). On the
  // UNIX socket it is accepted and changes nothing. (API 2)
  void authenticate(1: string token) throws (1: OperationError error),
  // Validates and stores a pipeline under its `name:`. A changed text is a
  // new revision (used from the next start); while the pipeline runs that
  // is refused unless `force`, which stops the run first.
  SubmitResult submit(1: SubmitRequest request) throws (1: InvalidPipeline invalid, 2: OperationError error),
  // Validates only; stores nothing.
  ValidateResult validate(1: string yaml, 2: string file) throws (1: InvalidPipeline invalid, 2: OperationError error),
  // Starts a worker for the pipeline: resumes an interrupted run, or starts run 1.
  PipelineInfo start(1: string name, 2: StartOptions options) throws (1: OperationError error),
  // Stops at the next checkpoint with the state PAUSED; resume() continues.
  PipelineInfo pause(1: string name) throws (1: OperationError error),
  PipelineInfo resume(1: string name) throws (1: OperationError error),
  // Stops at the next checkpoint with the state STOPPED; start() continues the run.
  PipelineInfo stop(1: string name) throws (1: OperationError error),
  // Forgets the pipeline and its state folder (outputs stay). Refused while it runs.
  void delete_pipeline(1: string name) throws (1: OperationError error),
  list<PipelineInfo> list_pipelines() throws (1: OperationError error),
  PipelineStatus status(1: string name) throws (1: OperationError error),
  list<Sample> samples(1: SampleQuery query) throws (1: OperationError error),
  PluginList plugins() throws (1: OperationError error),
  PluginInfo describe_plugin(1: string name) throws (1: OperationError error),
  Health health(),
  // Loads plugin files added to the plugin folders since the last scan.
  RescanResult rescan_plugins() throws (1: OperationError error),
  // The pipeline's recent log lines after `after_seq`, oldest first.
  list<LogLine> run_log(1: string name, 2: i64 after_seq, 3: i32 limit) throws (1: OperationError error),
}
