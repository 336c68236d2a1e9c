// Test plugin built for another SDK ABI (999, no info: a loader that reads past the ABI crashes).
#include <distill/plugin.h>

extern "C" __attribute__((visibility("default"))) const distill::PluginDescriptor* distill_plugin_descriptor() {
  static const distill::PluginDescriptor descriptor{999, "9.9.9", nullptr};
  return &descriptor;
}
