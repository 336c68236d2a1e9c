// Registers the jsonl plugin: a source (import) and a sink (export).
#include <distill/plugin.h>

distill::Component jsonl_source_component();
distill::Component jsonl_sink_component();

DISTILL_PLUGIN("jsonl", "reads teacher outputs from JSONL files; writes curated records as JSONL shards",
               jsonl_source_component(), jsonl_sink_component())
