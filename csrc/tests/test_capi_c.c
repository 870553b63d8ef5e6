/* C API tests, compiled as C99 against the shared library. argv[1] is csrc/tests/data, holding
 * tiny.hbn, tiny_input.raw (float32 NCHW batch of 2) and tiny_ref.raw (the Python engine's
 * output on it; see make_tiny_model.py). Bad files are written into the working directory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbn/hbn.h"

static int failures = 0;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

/* The call fails with `want`, leaves a message, and does not crash. */
#define CHECK_STATUS(call, want)                                                       \
  do {                                                                                 \
    hbn_status s_ = (call);                                                            \
    if (s_ != (want)) {                                                                \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, \
              #call, hbn_status_string(s_), hbn_status_string(want), hbn_last_error()); \
      ++failures;                                                                      \
    } else if ((want) != HBN_OK && hbn_last_error()[0] == '\0') {                      \
      fprintf(stderr, "%s:%d: %s failed without a message\n", __FILE__, __LINE__, #call); \
      ++failures;                                                                      \
    }                                                                                  \
  } while (0)

static char* read_all(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  char* buf;
  long n;
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = (char*)malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void write_all(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size)) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

static double max_rel_diff(const float* a, const float* b, size_t n) {
  double worst = 0;
  size_t i;
  for (i = 0; i < n; ++i) {
    double e = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static void test_bad_files(const char* dir, const char* model_bytes, size_t model_size) {
  hbn_model* m = (hbn_model*)&m; /* must be reset to NULL on failure */
  static const char junk[] = "NOTAMODEL and some more bytes to pass any size check..........";
  size_t cut;

  CHECK_STATUS(hbn_model_load_file("does/not/exist.hbn", &m), HBN_ERROR_IO);
  CHECK(m == NULL);
  CHECK(strstr(hbn_last_error(), "does/not/exist.hbn") != NULL);
  CHECK_STATUS(hbn_model_load_file(dir, &m), HBN_ERROR_FORMAT); /* a directory */
  CHECK(strstr(hbn_last_error(), "directory") != NULL);
  write_all("capi_bad_magic.hbn", junk, sizeof(junk));
  CHECK_STATUS(hbn_model_load_file("capi_bad_magic.hbn", &m), HBN_ERROR_FORMAT);
  CHECK(strstr(hbn_last_error(), "magic") != NULL);
  write_all("capi_empty.hbn", "", 0);
  CHECK_STATUS(hbn_model_load_file("capi_empty.hbn", &m), HBN_ERROR_FORMAT);
  write_all("capi_truncated.hbn", model_bytes, model_size / 2);
  CHECK_STATUS(hbn_model_load_file("capi_truncated.hbn", &m), HBN_ERROR_FORMAT);
  CHECK(m == NULL);
  /* Every truncation of a borrowed buffer is refused with a format error, none crashes. */
  for (cut = 0; cut < model_size; cut += (cut < 256 ? 1 : 97)) {
    hbn_status s = hbn_model_load_buffer(model_bytes, cut, &m);
    if (s != HBN_ERROR_FORMAT || m != NULL) {
      fprintf(stderr, "truncated to %lu bytes: %s (%s)\n", (unsigned long)cut, hbn_status_string(s), hbn_last_error());
      ++failures;
      hbn_model_free(m);
      break;
    }
  }
  CHECK_STATUS(hbn_model_load_buffer(junk, sizeof(junk), &m), HBN_ERROR_FORMAT);
  CHECK_STATUS(hbn_model_load_file(NULL, &m), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_load_file("x.hbn", NULL), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_load_buffer(NULL, 10, &m), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_load_buffer(model_bytes, model_size, NULL), HBN_ERROR_INVALID_ARGUMENT);
  hbn_model_free(NULL);
}

/* Bytes of the file overwritten one at a time (every header byte, then a stride through the rest,
 * which covers the op and tensor tables): each load is either refused with a format error or
 * gives a model that runs. Anything else (a crash, an internal error) is a bug. */
static void test_corrupt_bytes(const char* model_bytes, size_t model_size) {
  static const unsigned char values[2] = {0xFF, 0x00};
  unsigned char* copy = (unsigned char*)malloc(model_size);
  size_t i;
  int v, refused = 0, loaded = 0;
  for (i = 0; i < model_size; i += (i < 128 ? 1 : 61)) {
    for (v = 0; v < 2; ++v) {
      hbn_model* m = NULL;
      hbn_status s;
      memcpy(copy, model_bytes, model_size);
      if (copy[i] == values[v]) continue;
      copy[i] = values[v];
      s = hbn_model_load_buffer(copy, model_size, &m);
      if (s == HBN_ERROR_FORMAT && m == NULL) {
        ++refused;
      } else if (s == HBN_OK && m != NULL) {
        size_t in_n = 0, out_n = 0;
        ++loaded;
        if (hbn_model_input_count(m, 1, &in_n) == HBN_OK && hbn_model_output_count(m, 1, &out_n) == HBN_OK &&
            in_n <= 3 * 16 * 16 && out_n <= 4096) {
          float* x = (float*)calloc(in_n, sizeof(float));
          float* y = (float*)calloc(out_n, sizeof(float));
          hbn_status r = hbn_model_run(m, x, 1, HBN_LAYOUT_NCHW, in_n, y, out_n);
          if (r != HBN_OK) {
            fprintf(stderr, "byte %lu = 0x%02x: loaded, but the run failed: %s (%s)\n", (unsigned long)i,
                    values[v], hbn_status_string(r), hbn_model_last_error(m));
            ++failures;
          }
          free(x);
          free(y);
        }
        hbn_model_free(m);
      } else {
        fprintf(stderr, "byte %lu = 0x%02x: %s (%s)\n", (unsigned long)i, values[v], hbn_status_string(s),
                hbn_last_error());
        ++failures;
        hbn_model_free(m);
      }
    }
  }
  CHECK(refused > 0 && loaded > 0);
  free(copy);
}

static void test_null_model(void) {
  int64_t c, h, w, dims[4];
  int nd;
  size_t n;
  float x[1], y[1];
  CHECK_STATUS(hbn_model_input_shape(NULL, &c, &h, &w), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_output_shape(NULL, 1, dims, &nd), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_input_count(NULL, 1, &n), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(NULL, x, 1, HBN_LAYOUT_NCHW, 1, y, 1), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_set_num_threads(NULL, 2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK(hbn_model_op_count(NULL) == 0);
  CHECK(hbn_model_op_name(NULL, 0) == NULL);
  CHECK(hbn_model_op_kind(NULL, 0) == NULL);
  CHECK(hbn_model_param_bytes(NULL) == 0);
  CHECK(hbn_model_format_version(NULL) == 0);
  CHECK(hbn_model_num_threads(NULL) == 0);
  CHECK(hbn_model_metadata_json(NULL, &n) == NULL && n == 0);
  CHECK(strcmp(hbn_status_string(HBN_ERROR_FORMAT), "HBN_ERROR_FORMAT") == 0);
  CHECK(strcmp(hbn_status_string((hbn_status)99), "HBN_ERROR_UNKNOWN_STATUS") == 0);
}

static void test_model(hbn_model* m, const float* x, const float* ref) {
  int64_t c = 0, h = 0, w = 0, dims[4];
  int nd = 0, i, ops, seen_fprec = 0, seen_wbin = 0, seen_fbin = 0;
  size_t in2 = 0, out2 = 0, in1 = 0, out1 = 0, len = 0, k;
  float *y, *y1, *y_nhwc, *x_nhwc, *x_bad;
  const char* json;
  double steps[3 * 12], runs[3];

  CHECK_STATUS(hbn_model_input_shape(m, &c, &h, &w), HBN_OK);
  CHECK(c == 3 && h == 16 && w == 16);
  CHECK_STATUS(hbn_model_output_shape(m, 2, dims, &nd), HBN_OK);
  CHECK(nd == 2 && dims[0] == 2 && dims[1] == 10);
  CHECK_STATUS(hbn_model_input_count(m, 2, &in2), HBN_OK);
  CHECK_STATUS(hbn_model_output_count(m, 2, &out2), HBN_OK);
  CHECK_STATUS(hbn_model_input_count(m, 1, &in1), HBN_OK);
  CHECK_STATUS(hbn_model_output_count(m, 1, &out1), HBN_OK);
  CHECK(in2 == 2 * 3 * 16 * 16 && out2 == 20 && in1 == 3 * 16 * 16 && out1 == 10);
  ops = hbn_model_op_count(m);
  CHECK(ops == 10);
  for (i = 0; i < ops; ++i) {
    const char* kind = hbn_model_op_kind(m, i);
    CHECK(hbn_model_op_name(m, i) != NULL && hbn_model_op_name(m, i)[0] != '\0');
    CHECK(kind != NULL);
    if (!kind) continue;
    seen_fprec += strcmp(kind, "fprec") == 0;
    seen_wbin += strcmp(kind, "wbin") == 0;
    seen_fbin += strcmp(kind, "fbin") == 0;
  }
  CHECK(seen_fprec == 1 && seen_wbin == 1 && seen_fbin == 3);
  CHECK(strcmp(hbn_model_op_name(m, 0), "conv1") == 0 && strcmp(hbn_model_op_kind(m, 1), "max_pool") == 0);
  CHECK(hbn_model_op_name(m, ops) == NULL && hbn_model_op_name(m, -1) == NULL);
  CHECK(hbn_model_param_bytes(m) > 0);
  CHECK(hbn_model_format_version(m) >= 1);
  json = hbn_model_metadata_json(m, &len);
  CHECK(json != NULL && len == strlen(json) && strstr(json, "\"tiny\"") != NULL);
  CHECK(hbn_model_num_threads(m) == 1);

  y = (float*)calloc(out2, sizeof(float));
  y1 = (float*)calloc(out1, sizeof(float));
  y_nhwc = (float*)calloc(out2, sizeof(float));
  x_nhwc = (float*)malloc(in2 * sizeof(float));
  x_bad = (float*)malloc(in2 * sizeof(float));
  /* NCHW against the Python engine's output. */
  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2), HBN_OK);
  CHECK(max_rel_diff(y, ref, out2) < 1e-4);
  /* NHWC: the same images transposed give the same output. */
  for (k = 0; k < in2; ++k) {
    size_t n = k / (3 * 256), ch = k / 256 % 3, p = k % 256;
    x_nhwc[n * 768 + p * 3 + ch] = x[k];
  }
  CHECK_STATUS(hbn_model_run(m, x_nhwc, 2, HBN_LAYOUT_NHWC, in2, y_nhwc, out2), HBN_OK);
  CHECK(memcmp(y, y_nhwc, out2 * sizeof(float)) == 0);
  /* Batch 1 is image 0 of the batch of 2. */
  CHECK_STATUS(hbn_model_run(m, x, 1, HBN_LAYOUT_NCHW, in1, y1, out1), HBN_OK);
  CHECK(max_rel_diff(y1, y, out1) < 1e-5);
  /* Threads do not change the answer. */
  CHECK_STATUS(hbn_model_set_num_threads(m, 2), HBN_OK);
  CHECK(hbn_model_num_threads(m) == 2);
  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2, y_nhwc, out2), HBN_OK);
  CHECK(max_rel_diff(y_nhwc, y, out2) < 1e-5);

  /* Bad arguments: refused with a message on the model, and the model keeps working. */
  CHECK_STATUS(hbn_model_set_num_threads(m, 0), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, NULL, 2, HBN_LAYOUT_NCHW, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2, NULL, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2 - 1, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(hbn_model_last_error(m), "input_count") != NULL);
  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2 + 1), HBN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(hbn_model_last_error(m), "output_count") != NULL);
  CHECK_STATUS(hbn_model_run(m, x, 1, HBN_LAYOUT_NCHW, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, 0, HBN_LAYOUT_NCHW, 0, y, 0), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, -3, HBN_LAYOUT_NCHW, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, (int64_t)1 << 62, HBN_LAYOUT_NCHW, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run(m, x, 2, (hbn_layout)7, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_output_shape(m, 0, dims, &nd), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_output_shape(m, 1, NULL, &nd), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_input_shape(m, &c, NULL, &w), HBN_ERROR_INVALID_ARGUMENT);
  memcpy(x_bad, x, in2 * sizeof(float));
  x_bad[in2 - 1] = (float)NAN;
  CHECK_STATUS(hbn_model_run(m, x_bad, 2, HBN_LAYOUT_NCHW, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(hbn_model_last_error(m), "NaN") != NULL);
  x_bad[in2 - 1] = (float)INFINITY;
  CHECK_STATUS(hbn_model_run(m, x_bad, 2, HBN_LAYOUT_NHWC, in2, y, out2), HBN_ERROR_INVALID_ARGUMENT);

  /* Profile: per-step times for every repeat, and the same output. */
  CHECK(ops + 2 == 12);
  CHECK_STATUS(hbn_model_profile(m, x, 2, HBN_LAYOUT_NCHW, in2, y_nhwc, out2, 3, steps, 3 * 12, runs), HBN_OK);
  CHECK(max_rel_diff(y_nhwc, y, out2) < 1e-5);
  for (i = 0; i < 3; ++i) {
    double sum = 0;
    int s;
    for (s = 0; s < 12; ++s) {
      CHECK(steps[i * 12 + s] >= 0);
      sum += steps[i * 12 + s];
    }
    CHECK(runs[i] > 0 && sum <= runs[i] * 1.0001 + 1e-6);
  }
  CHECK_STATUS(hbn_model_profile(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2, 3, steps, 3 * 12 - 1, runs),
               HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_profile(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2, 0, NULL, 0, NULL), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_profile(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2, 2, NULL, 0, NULL), HBN_OK);

  CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, in2, y, out2), HBN_OK);
  CHECK(max_rel_diff(y, ref, out2) < 1e-4);
  free(y);
  free(y1);
  free(y_nhwc);
  free(x_nhwc);
  free(x_bad);
}

/* A borrowed buffer at every offset within a word (the kernels use aligned tensors in place and
 * copy misaligned ones): each loads and gives the same output bits as the mapped file. */
static void test_misaligned_buffers(hbn_model* from_file, const char* model_bytes, size_t model_size,
                                    const float* x) {
  float want[20], got[20];
  size_t off;
  char* block = (char*)malloc(model_size + 16);
  CHECK_STATUS(hbn_model_run(from_file, x, 2, HBN_LAYOUT_NCHW, 2 * 3 * 16 * 16, want, 20), HBN_OK);
  for (off = 0; off < 16; ++off) {
    hbn_model* m = NULL;
    memcpy(block + off, model_bytes, model_size);
    CHECK_STATUS(hbn_model_load_buffer(block + off, model_size, &m), HBN_OK);
    if (!m) continue;
    CHECK_STATUS(hbn_model_run(m, x, 2, HBN_LAYOUT_NCHW, 2 * 3 * 16 * 16, got, 20), HBN_OK);
    if (memcmp(got, want, sizeof(want)) != 0) {
      fprintf(stderr, "buffer at offset %lu: output differs from the mapped file's\n", (unsigned long)off);
      ++failures;
    }
    hbn_model_free(m);
  }
  free(block);
}

/* uint8 images: tiny_pixels.hbn (tiny.hbn exported with input_norm) takes them in NCHW and NHWC
 * with the same output bits as the pixel values as floats; a float-input model refuses them. */
static void test_pixels(const char* dir, hbn_model* float_model) {
  enum { N = 2, C = 3, H = 16, W = 16, COUNT = N * C * H * W };
  char path[4096];
  hbn_model* m = NULL;
  unsigned char px[COUNT], px_nhwc[COUNT];
  float xf[COUNT], want[20], got[20], got_nhwc[20];
  int i, n, c, h, w;
  for (i = 0; i < COUNT; ++i) {
    px[i] = (unsigned char)((i * 37 + 11) % 256);
    xf[i] = (float)px[i];
  }
  for (n = 0; n < N; ++n)
    for (c = 0; c < C; ++c)
      for (h = 0; h < H; ++h)
        for (w = 0; w < W; ++w)
          px_nhwc[((n * H + h) * W + w) * C + c] = px[((n * C + c) * H + h) * W + w];
  snprintf(path, sizeof(path), "%s/tiny_pixels.hbn", dir);
  CHECK_STATUS(hbn_model_load_file(path, &m), HBN_OK);
  if (!m) return;
  CHECK(hbn_model_takes_pixels(m) == 1);
  CHECK(hbn_model_takes_pixels(float_model) == 0);
  CHECK(hbn_model_takes_pixels(NULL) == 0);
  CHECK_STATUS(hbn_model_run(m, xf, N, HBN_LAYOUT_NCHW, COUNT, want, 20), HBN_OK);
  CHECK_STATUS(hbn_model_run_u8(m, px, N, HBN_LAYOUT_NCHW, COUNT, got, 20), HBN_OK);
  CHECK_STATUS(hbn_model_run_u8(m, px_nhwc, N, HBN_LAYOUT_NHWC, COUNT, got_nhwc, 20), HBN_OK);
  CHECK(memcmp(got, want, sizeof(want)) == 0);
  CHECK(memcmp(got_nhwc, want, sizeof(want)) == 0);
  CHECK_STATUS(hbn_model_run_u8(m, px, N, HBN_LAYOUT_NCHW, COUNT - 1, got, 20), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run_u8(m, px, N, HBN_LAYOUT_NCHW, COUNT, got, 19), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run_u8(m, NULL, N, HBN_LAYOUT_NCHW, COUNT, got, 20), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run_u8(m, px, N, (hbn_layout)5, COUNT, got, 20), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run_u8(NULL, px, N, HBN_LAYOUT_NCHW, COUNT, got, 20), HBN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(hbn_model_run_u8(float_model, px, N, HBN_LAYOUT_NCHW, COUNT, got, 20),
               HBN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(hbn_last_error(), "input_norm") != NULL);
  hbn_model_free(m);
}

int main(int argc, char** argv) {
  char path[4096];
  size_t model_size = 0, x_size = 0, ref_size = 0;
  char *model_bytes, *x, *ref;
  hbn_model *from_file = NULL, *from_buffer = NULL, *second = NULL;
  if (argc != 2) {
    fprintf(stderr, "usage: test_capi_c DATA_DIR\n");
    return 2;
  }
  snprintf(path, sizeof(path), "%s/tiny.hbn", argv[1]);
  model_bytes = read_all(path, &model_size);
  snprintf(path, sizeof(path), "%s/tiny_input.raw", argv[1]);
  x = read_all(path, &x_size);
  snprintf(path, sizeof(path), "%s/tiny_ref.raw", argv[1]);
  ref = read_all(path, &ref_size);
  CHECK(x_size == 2 * 3 * 16 * 16 * sizeof(float) && ref_size == 20 * sizeof(float));
  CHECK(hbn_version()[0] != '\0');

  test_bad_files(argv[1], model_bytes, model_size);
  test_corrupt_bytes(model_bytes, model_size);
  test_null_model();

  snprintf(path, sizeof(path), "%s/tiny.hbn", argv[1]);
  CHECK_STATUS(hbn_model_load_file(path, &from_file), HBN_OK);
  CHECK_STATUS(hbn_model_load_file(path, &second), HBN_OK); /* the same file mapped twice */
  CHECK_STATUS(hbn_model_load_buffer(model_bytes, model_size, &from_buffer), HBN_OK);
  if (from_file && from_buffer && second) {
    test_model(from_file, (const float*)x, (const float*)ref);
    test_model(from_buffer, (const float*)x, (const float*)ref);
    test_model(second, (const float*)x, (const float*)ref);
    test_misaligned_buffers(from_file, model_bytes, model_size, (const float*)x);
    test_pixels(argv[1], from_file);
  }
  hbn_model_free(from_file);
  hbn_model_free(second);
  hbn_model_free(from_buffer); /* the borrowed buffer is released after its model */
  free(model_bytes);

  /* The same model in format version 2: weights used in place from the mapping or the borrowed
   * buffer (copied only where misaligned), the same outputs. */
  snprintf(path, sizeof(path), "%s/tiny_v2.hbn", argv[1]);
  model_bytes = read_all(path, &model_size);
  CHECK_STATUS(hbn_model_load_file(path, &from_file), HBN_OK);
  CHECK_STATUS(hbn_model_load_buffer(model_bytes, model_size, &from_buffer), HBN_OK);
  if (from_file && from_buffer) {
    CHECK(hbn_model_format_version(from_file) == 2);
    CHECK(hbn_model_in_place_bytes(from_file) > 0);
    CHECK(hbn_model_in_place_bytes(from_buffer) > 0);
    test_model(from_file, (const float*)x, (const float*)ref);
    test_model(from_buffer, (const float*)x, (const float*)ref);
    test_misaligned_buffers(from_file, model_bytes, model_size, (const float*)x);
  }
  hbn_model_free(from_file);
  hbn_model_free(from_buffer);
  free(model_bytes);
  free(x);
  free(ref);
  remove("capi_bad_magic.hbn");
  remove("capi_empty.hbn");
  remove("capi_truncated.hbn");
  if (failures) {
    fprintf(stderr, "test_capi_c: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_capi_c: all checks passed\n");
  return 0;
}
