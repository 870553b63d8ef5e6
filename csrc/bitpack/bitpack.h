// Bit-packing of float activations into sign bits along channels (see hbn/types.h for the
// bit and sign conventions). Input rows are pixels of an NHWC tensor; each row of `channels`
// floats becomes words_for(channels) words, tail bits 0.
#pragma once
#include <cstdint>

#include "hbn/threadpool.h"
#include "hbn/types.h"

namespace hbn {

// bit(c) = flip[c] ? (x > thr[c]) : (x < thr[c])    when thresholds != null
// bit(c) = x < 0                                     when thresholds == null (sign(0) = +1)
// A BatchNorm before sign folds into (thr, flip): flip where gamma < 0; thr = -inf / +inf
// encodes a constant +1 / -1 channel (gamma == 0).
// in: rows x channels floats, row stride in_stride floats; out: rows x words_for(channels).
void pack_rows(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
               const float* thresholds = nullptr, const uint8_t* flip = nullptr,
               ThreadPool* pool = nullptr);

// Scalar reference of pack_rows (the definition the SIMD paths are tested against).
void pack_rows_reference(const float* in, int64_t rows, int channels, int64_t in_stride,
                         word_t* out, const float* thresholds = nullptr,
                         const uint8_t* flip = nullptr);

}  // namespace hbn
