// Internal, not part of the public contract: how a worker process reaches
// the store of what pipelines share (Context::shared(), e.g. the teacher's
// response cache), which the daemon owns. Served on <state>/shared.sock
// (mode 0600) with the control socket's framing and limits.
namespace cpp distill.rpc
namespace py distill_rpc_shared

struct Found {
  1: bool found,
  2: binary value,
}

struct Entry {
  1: binary key,
  2: binary value,
}

service SharedState {
  Found get(1: string space, 2: binary key),
  void put(1: string space, 2: binary key, 3: binary value),
  void erase(1: string space, 2: binary key),
  // Keys of `space` that start with `prefix` and sort after `after` ("" from
  // the first), in order, at most `limit`.
  list<Entry> scan(1: string space, 2: binary prefix, 3: binary after, 4: i32 limit),
}
