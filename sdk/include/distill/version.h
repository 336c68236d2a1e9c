// The SDK's version and ABI number: the one place both live.
//
// DISTILL_SDK_ABI changes whenever a type a plugin shares with the daemon
// changes layout or meaning (Record, Batch, Context, the stage interfaces,
// the descriptor). The loader refuses a plugin whose ABI differs. Bump it
// with a line in sdk/CHANGELOG.md.
#pragma once

#define DISTILL_SDK_VERSION "0.3.0"
#define DISTILL_SDK_ABI 3u
