/* sqz_kernels.c: the int8 kernels declared in sqz_kernels.h (C99, no malloc, no float). */
#include "sqz_kernels.h"

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded. */
static int32_t sqz_high_mul(int32_t a, int32_t b) {
  int64_t ab;
  int32_t nudge;
  if (a == b && a == INT32_MIN) {
    return INT32_MAX;
  }
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp's RoundingDivideByPOT: x / 2^e, rounded half away from zero. */
static int32_t sqz_div_pot(int32_t x, int32_t e) {
  const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  /* arithmetic shift of a negative value: what every C99 compiler for ARM and x86 does */
  return (x >> e) + (remainder > threshold ? 1 : 0);
}

int32_t sqz_mul_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return sqz_div_pot(sqz_high_mul((int32_t)((uint32_t)x << left), mult), right);
}

static int32_t sqz_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

void sqz_conv(const sqz_conv_t *p, const int8_t *in, int8_t *out) {
  const int32_t groups = p->in_c / p->filter_c;
  const int32_t per_group = p->out_c / groups;
  int32_t oy, ox, oc, ky, kx, ic;
  for (oy = 0; oy < p->out_h; ++oy) {
    const int32_t y0 = oy * p->stride_h - p->pad_h;
    for (ox = 0; ox < p->out_w; ++ox) {
      const int32_t x0 = ox * p->stride_w - p->pad_w;
      for (oc = 0; oc < p->out_c; ++oc) {
        const int32_t c0 = (oc / per_group) * p->filter_c;
        const int8_t *w = p->weights + (int32_t)oc * p->k_h * p->k_w * p->filter_c;
        int32_t acc = 0;
        for (ky = 0; ky < p->k_h; ++ky) {
          const int32_t y = y0 + p->dil_h * ky;
          if (y < 0 || y >= p->in_h) {
            continue;
          }
          for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t x = x0 + p->dil_w * kx;
            const int8_t *src;
            const int8_t *wk;
            if (x < 0 || x >= p->in_w) {
              continue;
            }
            src = in + ((int32_t)y * p->in_w + x) * p->in_c + c0;
            wk = w + ((int32_t)ky * p->k_w + kx) * p->filter_c;
            for (ic = 0; ic < p->filter_c; ++ic) {
              acc += (int32_t)wk[ic] * ((int32_t)src[ic] + p->in_offset);
            }
          }
        }
        if (p->bias) {
          acc += p->bias[oc];
        }
        acc = sqz_mul_by_quantized_multiplier(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
        out[((int32_t)oy * p->out_w + ox) * p->out_c + oc] =
            (int8_t)sqz_clamp(acc, p->act_min, p->act_max);
      }
    }
  }
}

void sqz_depthwise_conv(const sqz_conv_t *p, const int8_t *in, int8_t *out) {
  int32_t oy, ox, ic, m, ky, kx;
  for (oy = 0; oy < p->out_h; ++oy) {
    const int32_t y0 = oy * p->stride_h - p->pad_h;
    for (ox = 0; ox < p->out_w; ++ox) {
      const int32_t x0 = ox * p->stride_w - p->pad_w;
      for (ic = 0; ic < p->in_c; ++ic) {
        for (m = 0; m < p->depth_mult; ++m) {
          const int32_t oc = m + ic * p->depth_mult;
          int32_t acc = 0;
          for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t y = y0 + p->dil_h * ky;
            if (y < 0 || y >= p->in_h) {
              continue;
            }
            for (kx = 0; kx < p->k_w; ++kx) {
              const int32_t x = x0 + p->dil_w * kx;
              if (x < 0 || x >= p->in_w) {
                continue;
              }
              acc += (int32_t)p->weights[((int32_t)ky * p->k_w + kx) * p->out_c + oc] *
                     ((int32_t)in[((int32_t)y * p->in_w + x) * p->in_c + ic] + p->in_offset);
            }
          }
          if (p->bias) {
            acc += p->bias[oc];
          }
          acc = sqz_mul_by_quantized_multiplier(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
          out[((int32_t)oy * p->out_w + ox) * p->out_c + oc] =
              (int8_t)sqz_clamp(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

/* The filter window of output (oy, ox), clamped to the input (TFLM's pooling bounds). */
#define SQZ_POOL_WINDOW                                                      \
  const int32_t y0 = oy * p->stride_h - p->pad_h;                            \
  const int32_t x0 = ox * p->stride_w - p->pad_w;                            \
  const int32_t ky0 = y0 < 0 ? -y0 : 0;                                      \
  const int32_t ky1 = p->k_h < p->in_h - y0 ? p->k_h : p->in_h - y0;         \
  const int32_t kx0 = x0 < 0 ? -x0 : 0;                                      \
  const int32_t kx1 = p->k_w < p->in_w - x0 ? p->k_w : p->in_w - x0

void sqz_max_pool(const sqz_pool_t *p, const int8_t *in, int8_t *out) {
  int32_t oy, ox, c, ky, kx;
  for (oy = 0; oy < p->out_h; ++oy) {
    for (ox = 0; ox < p->out_w; ++ox) {
      SQZ_POOL_WINDOW;
      for (c = 0; c < p->c; ++c) {
        int32_t best = -128;
        for (ky = ky0; ky < ky1; ++ky) {
          for (kx = kx0; kx < kx1; ++kx) {
            const int32_t v = in[((y0 + ky) * p->in_w + (x0 + kx)) * p->c + c];
            best = v > best ? v : best;
          }
        }
        out[((int32_t)oy * p->out_w + ox) * p->c + c] =
            (int8_t)sqz_clamp(best, p->act_min, p->act_max);
      }
    }
  }
}

void sqz_avg_pool(const sqz_pool_t *p, const int8_t *in, int8_t *out) {
  int32_t oy, ox, c, ky, kx;
  for (oy = 0; oy < p->out_h; ++oy) {
    for (ox = 0; ox < p->out_w; ++ox) {
      SQZ_POOL_WINDOW;
      for (c = 0; c < p->c; ++c) {
        int32_t acc = 0, n = 0;
        for (ky = ky0; ky < ky1; ++ky) {
          for (kx = kx0; kx < kx1; ++kx) {
            acc += in[((y0 + ky) * p->in_w + (x0 + kx)) * p->c + c];
            ++n;
          }
        }
        if (n > 0) { /* round half away from zero, as TFLM does */
          acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
        }
        out[((int32_t)oy * p->out_w + ox) * p->c + c] =
            (int8_t)sqz_clamp(acc, p->act_min, p->act_max);
      }
    }
  }
}

void sqz_mean_hw(const int8_t *in, int32_t hw, int32_t c, int32_t in_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, int8_t *out) {
  int32_t ch, i;
  for (ch = 0; ch < c; ++ch) {
    int32_t sum = 0;
    for (i = 0; i < hw; ++i) {
      sum += in[i * c + ch];
    }
    sum -= in_zp * hw;
    out[ch] = (int8_t)sqz_clamp(sqz_mul_by_quantized_multiplier(sum, mult, shift) + out_zp,
                                -128, 127);
  }
}

void sqz_add(const sqz_add_t *p, const int8_t *a, const int8_t *b, int32_t n, int8_t *out) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    const int32_t x = (p->in1_offset + a[i]) * (1 << p->left_shift);
    const int32_t y = (p->in2_offset + b[i]) * (1 << p->left_shift);
    /* TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp: shifts are <= 0 */
    const int32_t sx = sqz_div_pot(sqz_high_mul(x, p->in1_mult), -p->in1_shift);
    const int32_t sy = sqz_div_pot(sqz_high_mul(y, p->in2_mult), -p->in2_shift);
    const int32_t r =
        sqz_div_pot(sqz_high_mul(sx + sy, p->out_mult), -p->out_shift) + p->out_offset;
    out[i] = (int8_t)sqz_clamp(r, p->act_min, p->act_max);
  }
}

void sqz_requantize(const int8_t *in, int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult,
                    int32_t shift, int8_t *out) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    const int32_t v = sqz_mul_by_quantized_multiplier(in[i] - in_zp, mult, shift) + out_zp;
    out[i] = (int8_t)sqz_clamp(v, -128, 127);
  }
}

void sqz_concat(const int8_t *const *ins, const int32_t *widths, int32_t n_in, int32_t outer,
                int8_t *out) {
  int32_t row, k, j;
  for (row = 0; row < outer; ++row) {
    for (k = 0; k < n_in; ++k) {
      const int8_t *src = ins[k] + row * widths[k];
      for (j = 0; j < widths[k]; ++j) {
        *out++ = src[j];
      }
    }
  }
}

void sqz_pad(const int8_t *in, int32_t h, int32_t w, int32_t c, int32_t top, int32_t bottom,
             int32_t left, int32_t right, int8_t value, int8_t *out) {
  const int32_t ow = w + left + right;
  int32_t y, x, k;
  for (y = 0; y < h + top + bottom; ++y) {
    for (x = 0; x < ow; ++x) {
      const int inside = y >= top && y < top + h && x >= left && x < left + w;
      for (k = 0; k < c; ++k) {
        *out++ = inside ? in[((y - top) * w + (x - left)) * c + k] : value;
      }
    }
  }
}

void sqz_copy(const int8_t *in, int32_t n, int8_t *out) {
  int32_t i;
  if (in == out) {
    return;
  }
  for (i = 0; i < n; ++i) {
    out[i] = in[i];
  }
}
