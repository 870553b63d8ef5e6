// The NEON K-in-lanes weight layout (bconv_klanes_neon.cc), declared apart from the shared
// 32-channel block layout (bconv_kernels.h) that the x86, scalar and NEON broadcast rows read.
//
// A receptive field is nseg segments of len words (segment s of a pixel's field at
// s * seg_stride words in the activation rows). Channels go in groups of kKlanesChannels; a
// group is (len + 1) / 2 steps per segment, a step holding each channel's two consecutive K
// words (an odd segment's last step: that word and a zero word):
//   word ((g * nseg + s) * steps + q) * 8 + c * 2 + h = K word s * len + 2q + h of channel 4g + c.
// So one 128-bit load serves one channel for two K words, and one q load of a pixel's
// activations meets it lane for lane.
#pragma once
#include <cstdint>
#include <vector>

#include "hbn/types.h"

namespace hbn {
namespace detail {

constexpr int kKlanesPixels = 6;    // tile rows (output pixels)
constexpr int kKlanesChannels = 4;  // channels per weight group

inline int64_t kklanes_group_words(int nseg, int64_t len) {
  return static_cast<int64_t>(nseg) * ((len + 1) / 2) * 2 * kKlanesChannels;
}

// Whether the layout beats the broadcast tile for segments of len words: an odd segment's last
// step counts one word in a two-word step (len 3: 3 steps' work in 4), so short odd segments
// (one-word pixels under a 3-wide kernel, 1x1 fields of one word) stay on the broadcast tile.
// The K loop needs at least one full step per segment.
inline bool klanes_pays(int64_t len) { return len >= 2 && (len % 2 == 0 || len >= 9); }

// The layout from the 32-channel block form [ceil(OC/32)][kc][32] (kc = nseg * len words per
// field), for OCpad (a multiple of 32) channels; padded channels are zero words.
std::vector<word_t> pack_klanes(const word_t* blocks, int64_t kc, int64_t ocpad, int nseg, int64_t len);

}  // namespace detail
}  // namespace hbn
