// A shared object without the plugin entry point, which the loader must refuse.
extern "C" __attribute__((visibility("default"))) int distill_test_answer() { return 42; }
