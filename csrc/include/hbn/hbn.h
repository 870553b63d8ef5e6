/* hbn_engine C API: load a .hbn model and run it, with no Python and no C++ types across the
 * boundary. C99 and C++ compatible. Full reference: docs/embedding.md.
 *
 * Errors: every function that can fail returns an hbn_status (HBN_OK == 0). Nothing is thrown
 * or aborted across the boundary: exceptions, including out-of-memory, become status codes.
 * The message of the last failure on the calling thread is hbn_last_error(); a model also keeps
 * the message of its own last failure, hbn_model_last_error().
 *
 * Ownership: hbn_model_load_* hand out a model the caller frees with hbn_model_free(). Op names
 * and kinds and the metadata JSON belong to the model and stay valid until it is freed; error
 * messages are thread-local (see each function); hbn_status_string and hbn_version are static.
 *
 * Thread-safety: different models are independent. One model may be shared by threads: the
 * query functions are safe at any time, and runs (hbn_model_run / hbn_model_profile) and
 * hbn_model_set_num_threads on the same model are serialized (one at a time; use one model per
 * thread to run in parallel, a memory-mapped file is shared between them). */
#ifndef HBN_HBN_H_
#define HBN_HBN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define HBN_API
#elif defined(__GNUC__) || defined(__clang__)
#define HBN_API __attribute__((visibility("default")))
#else
#define HBN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this API; bumped when a declaration changes incompatibly. */
#define HBN_API_VERSION 1

typedef enum hbn_status {
  HBN_OK = 0,
  HBN_ERROR_INVALID_ARGUMENT = 1, /* NULL pointer, wrong size or shape, batch < 1, NaN/inf input */
  HBN_ERROR_IO = 2,               /* the file cannot be opened, read or mapped */
  HBN_ERROR_FORMAT = 3,           /* not a valid .hbn file (message names the problem) */
  HBN_ERROR_OUT_OF_MEMORY = 4,
  HBN_ERROR_INTERNAL = 5,         /* anything else; a bug: please report the message */
  /* Not a status: gives the enum the range of int, so any value a C caller passes is defined. */
  HBN_STATUS_MAX_ENUM = 0x7FFFFFFF
} hbn_status;

/* Memory layout of a 4-D float32 input batch. */
typedef enum hbn_layout {
  HBN_LAYOUT_NCHW = 0, /* [batch][channels][height][width], as PyTorch */
  HBN_LAYOUT_NHWC = 1, /* [batch][height][width][channels], as image decoders produce */
  HBN_LAYOUT_MAX_ENUM = 0x7FFFFFFF /* not a layout (see HBN_STATUS_MAX_ENUM) */
} hbn_layout;

typedef struct hbn_model hbn_model; /* opaque */

/* Library version string, e.g. "0.1.0". */
HBN_API const char* hbn_version(void);
/* Short name of a status code ("HBN_ERROR_FORMAT"); never NULL. */
HBN_API const char* hbn_status_string(hbn_status status);
/* Message of the last failing call on the calling thread ("" if none); thread-local, valid until
 * the next failing call on this thread. */
HBN_API const char* hbn_last_error(void);

/* Loads the file at `path` by memory-mapping it read-only (pages shared with every other model
 * and process mapping the same file). The file must not be modified or truncated while the model
 * lives. On success *out is the new model; on failure *out is NULL. */
HBN_API hbn_status hbn_model_load_file(const char* path, hbn_model** out);
/* Loads a model from a caller-owned buffer without copying it: the buffer must stay valid and
 * unchanged until hbn_model_free(). Any alignment is accepted. */
HBN_API hbn_status hbn_model_load_buffer(const void* data, size_t size, hbn_model** out);
/* Frees the model (NULL is ignored). No run may be in progress on it. */
HBN_API void hbn_model_free(hbn_model* model);
/* Message of this model's last failing call ("" if none), from whichever thread made it. The
 * string is a copy owned by the calling thread, valid until its next hbn_model_last_error(). */
HBN_API const char* hbn_model_last_error(const hbn_model* model);

/* Per-image input shape: channels, height, width (an input batch is [batch, c, h, w] in NCHW). */
HBN_API hbn_status hbn_model_input_shape(const hbn_model* model, int64_t* c, int64_t* h, int64_t* w);
/* Output shape for a batch: *ndim = 2 ({batch, classes}) for flat outputs, else 4 (NCHW);
 * dims must hold 4 entries. The output is always contiguous in that order. */
HBN_API hbn_status hbn_model_output_shape(const hbn_model* model, int64_t batch, int64_t dims[4],
                                          int* ndim);
/* Number of floats in the input / output of a batch. */
HBN_API hbn_status hbn_model_input_count(const hbn_model* model, int64_t batch, size_t* count);
HBN_API hbn_status hbn_model_output_count(const hbn_model* model, int64_t batch, size_t* count);

/* The graph's ops in execution order. Names and kinds are owned by the model; NULL when i is
 * out of range or the model is NULL. Kind is "fprec", "wbin" or "fbin" for convolutions (float,
 * binary-weight, fully binary), else the op type ("max_pool", "add", ...). */
HBN_API int hbn_model_op_count(const hbn_model* model);
HBN_API const char* hbn_model_op_name(const hbn_model* model, int i);
HBN_API const char* hbn_model_op_kind(const hbn_model* model, int i);
/* Bytes of parameters as stored in the file (binary weights at 1 bit each); 0 for NULL. */
HBN_API size_t hbn_model_param_bytes(const hbn_model* model);
/* Bytes of the file (or buffer) the model reads in place at run time: weights a version-2 file
 * stores in their kernel's layout, and the scale / bias / threshold vectors of those convs.
 * 0 for NULL or when every weight was repacked. */
HBN_API size_t hbn_model_in_place_bytes(const hbn_model* model);
/* .hbn format version of the loaded file; 0 for NULL. */
HBN_API uint32_t hbn_model_format_version(const hbn_model* model);
/* The file's metadata JSON (UTF-8, NUL-terminated; *len, if not NULL, gets its length). */
HBN_API const char* hbn_model_metadata_json(const hbn_model* model, size_t* len);

/* Worker threads used by a run (default 1). n >= 1. */
HBN_API hbn_status hbn_model_set_num_threads(hbn_model* model, int n);
HBN_API int hbn_model_num_threads(const hbn_model* model);

/* Runs a batch. `input` holds exactly input_count floats (hbn_model_input_count) in `layout`,
 * `output` room for exactly output_count floats (hbn_model_output_count); other counts are
 * refused, as are NaN or infinite inputs. Any batch size >= 1: buffers are planned per batch
 * size on first use. */
HBN_API hbn_status hbn_model_run(hbn_model* model, const float* input, int64_t batch,
                                 hbn_layout layout, size_t input_count, float* output,
                                 size_t output_count);

/* 1 when the model takes images (it was exported with input_norm: its first op normalises
 * pixels), so hbn_model_run_u8 accepts it; 0 otherwise and for NULL. */
HBN_API int hbn_model_takes_pixels(const hbn_model* model);
/* hbn_model_run for uint8 pixels (input_count bytes, NCHW or NHWC as image decoders produce):
 * each pixel becomes the float of its value and the model's own input_norm op normalises it, so
 * the result equals hbn_model_run on the same pixel values as floats. A model that does not
 * take pixels (hbn_model_takes_pixels() == 0) is refused with HBN_ERROR_INVALID_ARGUMENT. */
HBN_API hbn_status hbn_model_run_u8(hbn_model* model, const uint8_t* input, int64_t batch,
                                    hbn_layout layout, size_t input_count, float* output,
                                    size_t output_count);

/* Runs `repeats` times and times every step. Steps are: 0 the input conversion, 1..op_count the
 * ops in order, op_count + 1 the output conversion. step_seconds (NULL or step_count >=
 * repeats * (op_count + 2) entries) gets step k of repeat r at [r * (op_count + 2) + k];
 * run_seconds (NULL or `repeats` entries) the end-to-end time of each repeat. */
HBN_API hbn_status hbn_model_profile(hbn_model* model, const float* input, int64_t batch,
                                     hbn_layout layout, size_t input_count, float* output,
                                     size_t output_count, int repeats, double* step_seconds,
                                     size_t step_count, double* run_seconds);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HBN_HBN_H_ */
