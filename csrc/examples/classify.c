/* classify: the hbn_engine C API in one small C99 program. Loads a .hbn model, reads an image,
 * runs it and prints the top-5 classes (names from the model's metadata when it has them).
 *
 *   classify MODEL.hbn IMAGE [--threads N]
 *
 * IMAGE is a binary PGM (P5, grey) or PPM (P6, RGB) with maxval <= 255, resized to the model's
 * input with bilinear sampling and scaled to [0, 1] (to 0..255 pixel values for a model exported
 * with input_norm, which normalises pixels itself: hbn_model_takes_pixels); or a .raw file of exactly C*H*W float32
 * values in NCHW order, used as is. The pixels go to the engine in NHWC order, the layout an
 * image decoder produces, so nothing is transposed here. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbn/hbn.h"

static void die(const char* msg, const char* detail) {
  fprintf(stderr, "classify: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static int ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Next header integer of a PNM file, skipping whitespace and # comments. */
static long pnm_int(FILE* f) {
  int ch = fgetc(f);
  long v = 0;
  for (;;) {
    while (ch != EOF && isspace(ch)) ch = fgetc(f);
    if (ch != '#') break;
    while (ch != EOF && ch != '\n') ch = fgetc(f);
  }
  if (ch == EOF || !isdigit(ch)) return -1;
  while (ch != EOF && isdigit(ch)) {
    if (v > 1000000) return -1;
    v = v * 10 + (ch - '0');
    ch = fgetc(f);
  }
  return v; /* the single whitespace after maxval has been consumed by the loop */
}

/* Reads a P5/P6 image and writes the model input as NHWC floats in [0, 1]: bilinear resize to
 * h x w, grey replicated to 3 channels or RGB averaged to 1 as the model needs. */
static void load_pnm(const char* path, int64_t c, int64_t h, int64_t w, float* out) {
  FILE* f = fopen(path, "rb");
  char magic[2];
  long iw, ih, maxval;
  int src_c;
  unsigned char* px;
  int64_t y, x, k;
  if (!f) die("cannot open image", path);
  if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6'))
    die("not a binary PGM (P5) or PPM (P6) image", path);
  src_c = magic[1] == '6' ? 3 : 1;
  iw = pnm_int(f), ih = pnm_int(f), maxval = pnm_int(f);
  if (iw < 1 || ih < 1 || maxval < 1 || maxval > 255) die("unsupported PNM header (size, or maxval > 255)", path);
  px = (unsigned char*)malloc((size_t)iw * (size_t)ih * (size_t)src_c);
  if (!px) die("out of memory", NULL);
  if (fread(px, (size_t)src_c, (size_t)(iw * ih), f) != (size_t)(iw * ih)) die("image data is truncated", path);
  fclose(f);
  if (c != 1 && c != 3) die("the model's input is neither 1 nor 3 channels: pass a .raw file", NULL);
  for (y = 0; y < h; ++y) {
    /* pixel-centre alignment, as most resizers */
    double sy = ((double)y + 0.5) * (double)ih / (double)h - 0.5;
    long y0 = (long)floor(sy), y1;
    double fy = sy - (double)y0;
    if (y0 < 0) y0 = 0, fy = 0;
    y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
    for (x = 0; x < w; ++x) {
      double sx = ((double)x + 0.5) * (double)iw / (double)w - 0.5;
      long x0 = (long)floor(sx), x1;
      double fx = sx - (double)x0, rgb[3];
      int s;
      if (x0 < 0) x0 = 0, fx = 0;
      x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
      for (s = 0; s < src_c; ++s) {
        double a = px[(y0 * iw + x0) * src_c + s], b = px[(y0 * iw + x1) * src_c + s];
        double d = px[(y1 * iw + x0) * src_c + s], e = px[(y1 * iw + x1) * src_c + s];
        rgb[s] = ((a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy) / (double)maxval;
      }
      for (k = 0; k < c; ++k) {
        double v = src_c == 1 ? rgb[0] : c == 1 ? (rgb[0] + rgb[1] + rgb[2]) / 3 : rgb[k];
        out[(y * w + x) * c + k] = (float)v;
      }
    }
  }
  free(px);
}

static void load_raw(const char* path, size_t count, float* out) {
  FILE* f = fopen(path, "rb");
  long n;
  if (!f) die("cannot open input", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0 || (size_t)n != count * sizeof(float)) die("the .raw file must hold exactly C*H*W float32 values", path);
  if (fread(out, sizeof(float), count, f) != count) die("cannot read", path);
  fclose(f);
}

/* Copies class name i from the metadata's "class_names" array into buf, or "class <i>". A
 * deliberately small scan: the exporter writes a flat array of JSON strings. */
static void class_name(const char* json, int i, char* buf, size_t size) {
  const char* p = json ? strstr(json, "\"class_names\"") : NULL;
  int k = 0;
  snprintf(buf, size, "class %d", i);
  if (!p) return;
  p += strlen("\"class_names\"");
  while (*p == ' ' || *p == ':') ++p;
  if (*p != '[') return;
  ++p;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '\n') ++p;
    if (*p != '"') return;
    ++p;
    if (k == i) {
      size_t n = 0;
      while (*p && *p != '"' && n + 1 < size) {
        if (*p == '\\' && p[1]) ++p;
        buf[n++] = *p++;
      }
      buf[n] = '\0';
      return;
    }
    while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
    if (*p) ++p;
    ++k;
  }
}

int main(int argc, char** argv) {
  hbn_model* model = NULL;
  int64_t c, h, w, dims[4];
  int ndim, threads = 1, i, r;
  size_t in_count, out_count, classes;
  float *input, *scores;
  int top[5];
  double max_score, denom;
  const char* json;
  hbn_layout layout;

  if (argc != 3 && !(argc == 5 && strcmp(argv[3], "--threads") == 0)) {
    fprintf(stderr, "usage: classify MODEL.hbn IMAGE.(pgm|ppm|raw) [--threads N]\n");
    return 2;
  }
  if (argc == 5) threads = atoi(argv[4]);
  if (hbn_model_load_file(argv[1], &model) != HBN_OK) die("cannot load the model", hbn_last_error());
  if (hbn_model_set_num_threads(model, threads) != HBN_OK) die("bad --threads", hbn_model_last_error(model));
  if (hbn_model_input_shape(model, &c, &h, &w) != HBN_OK || hbn_model_output_shape(model, 1, dims, &ndim) != HBN_OK ||
      hbn_model_input_count(model, 1, &in_count) != HBN_OK || hbn_model_output_count(model, 1, &out_count) != HBN_OK)
    die("cannot query the model", hbn_model_last_error(model));
  if (ndim != 2) die("not a classifier: the model's output is not [batch, classes]", NULL);
  classes = out_count;

  input = (float*)malloc(in_count * sizeof(float));
  scores = (float*)malloc(out_count * sizeof(float));
  if (!input || !scores) die("out of memory", NULL);
  if (ends_with(argv[2], ".raw")) {
    load_raw(argv[2], in_count, input);
    layout = HBN_LAYOUT_NCHW;
  } else {
    load_pnm(argv[2], c, h, w, input);
    layout = HBN_LAYOUT_NHWC;
    if (hbn_model_takes_pixels(model)) {
      size_t i;
      for (i = 0; i < in_count; ++i) input[i] *= 255.0f;
    }
  }
  if (hbn_model_run(model, input, 1, layout, in_count, scores, out_count) != HBN_OK)
    die("run failed", hbn_model_last_error(model));

  /* Probabilities by softmax over the scores (a no-op ranking change if the model ends in one). */
  max_score = scores[0];
  for (i = 1; i < (int)classes; ++i) max_score = scores[i] > max_score ? scores[i] : max_score;
  denom = 0;
  for (i = 0; i < (int)classes; ++i) denom += exp(scores[i] - max_score);
  for (r = 0; r < 5 && r < (int)classes; ++r) {
    int best = -1, q;
    for (i = 0; i < (int)classes; ++i) {
      int taken = 0;
      for (q = 0; q < r; ++q) taken |= top[q] == i;
      if (!taken && (best < 0 || scores[i] > scores[best])) best = i;
    }
    top[r] = best;
  }
  json = hbn_model_metadata_json(model, NULL);
  printf("%s: %lldx%lldx%lld input, %lu classes\n", argv[1], (long long)c, (long long)h, (long long)w,
         (unsigned long)classes);
  for (r = 0; r < 5 && r < (int)classes; ++r) {
    char name[128];
    class_name(json, top[r], name, sizeof(name));
    printf("%d. %-24s score %10.4f  p %.4f\n", r + 1, name, scores[top[r]], exp(scores[top[r]] - max_score) / denom);
  }
  free(input);
  free(scores);
  hbn_model_free(model);
  return 0;
}
