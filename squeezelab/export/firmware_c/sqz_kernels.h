/* sqz_kernels.h: int8 kernels of squeezelab's generated firmware (C99, no malloc, no float).
 *
 * Each kernel follows TensorFlow Lite Micro's reference kernel of the same name
 * (tensorflow/lite/kernels/internal/reference/integer_ops/, double rounding), so the
 * outputs equal TFLM's bit for bit. Tensors are NHWC, batch 1. The multipliers and
 * shifts are computed at generation time exactly as TFLM computes them when it prepares
 * a model; here they are constants in flash. */
#ifndef SQZ_KERNELS_H_
#define SQZ_KERNELS_H_

#include <stdint.h>

/* A convolution, depthwise convolution or fully connected layer (FC: 1x1 everything). */
typedef struct {
  int16_t in_h, in_w, in_c;     /* input */
  int16_t out_h, out_w, out_c;  /* output */
  int16_t k_h, k_w;             /* kernel */
  int16_t stride_h, stride_w;
  int16_t dil_h, dil_w;
  int16_t pad_h, pad_w;         /* top / left padding (TFLM's ComputePaddingHeightWidth) */
  int16_t filter_c;             /* input channels per filter (groups = in_c / filter_c) */
  int16_t depth_mult;           /* depthwise: output channels per input channel */
  int32_t in_offset;            /* -input zero point */
  int32_t out_offset;           /* output zero point */
  int32_t act_min, act_max;     /* fused activation, quantised */
  const int8_t *weights;        /* OHWI (conv, FC), 1HWO (depthwise) */
  const int32_t *bias;          /* per output channel, or 0 */
  const int32_t *mult;          /* per output channel */
  const int32_t *shift;         /* per output channel */
} sqz_conv_t;

typedef struct {
  int16_t in_h, in_w, c, out_h, out_w;
  int16_t k_h, k_w, stride_h, stride_w, pad_h, pad_w;
  int32_t act_min, act_max;
} sqz_pool_t;

typedef struct {
  int32_t in1_offset, in2_offset, out_offset;
  int32_t in1_mult, in2_mult, out_mult;
  int32_t in1_shift, in2_shift, out_shift;
  int32_t left_shift, act_min, act_max;
} sqz_add_t;

int32_t sqz_mul_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift);
void sqz_conv(const sqz_conv_t *p, const int8_t *in, int8_t *out);
void sqz_depthwise_conv(const sqz_conv_t *p, const int8_t *in, int8_t *out);
void sqz_max_pool(const sqz_pool_t *p, const int8_t *in, int8_t *out);
void sqz_avg_pool(const sqz_pool_t *p, const int8_t *in, int8_t *out);
/* Mean (or sum) over H and W of an (h, w, c) tensor; for a mean, mult and shift
 * already include 1/(h*w), as TFLM folds it in. */
void sqz_mean_hw(const int8_t *in, int32_t hw, int32_t c, int32_t in_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, int8_t *out);
void sqz_add(const sqz_add_t *p, const int8_t *a, const int8_t *b, int32_t n, int8_t *out);
void sqz_requantize(const int8_t *in, int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult,
                    int32_t shift, int8_t *out);
/* Concatenation along the last axis: `outer` rows, input i contributes widths[i] values. */
void sqz_concat(const int8_t *const *ins, const int32_t *widths, int32_t n_in, int32_t outer,
                int8_t *out);
/* Padding of an (h, w, c) tensor with `value` (PAD: the zero point, PADV2: its constant). */
void sqz_pad(const int8_t *in, int32_t h, int32_t w, int32_t c, int32_t top, int32_t bottom,
             int32_t left, int32_t right, int8_t value, int8_t *out);
void sqz_copy(const int8_t *in, int32_t n, int8_t *out);

#endif /* SQZ_KERNELS_H_ */
