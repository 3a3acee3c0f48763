/* arm_main.c: runs the generated model on the test images built into the firmware and
 * prints each output (hex) and the SysTick ticks of each inference over semihosting.
 * Under `qemu-system-arm -icount shift=0` the ticks measure executed instructions; a
 * loop of a known instruction count calibrates ticks to instructions. */
#include <stdint.h>

#include "images.h"
#include "model.h"

void sqz_write(const char *text);
extern volatile uint32_t sqz_systick_wraps;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint64_t sqz_ticks(void) {
  uint32_t wraps, cvr;
  do {
    wraps = sqz_systick_wraps;
    cvr = SYST_CVR;
  } while (wraps != sqz_systick_wraps);
  return ((uint64_t)wraps << 24) + (0xFFFFFFu - cvr);
}

static char *sqz_hex(char *p, uint32_t v, int digits) {
  static const char hex[] = "0123456789abcdef";
  int i;
  for (i = digits - 1; i >= 0; --i) {
    *p++ = hex[(v >> (4 * i)) & 0xFu];
  }
  return p;
}

static void sqz_print(const char *tag, uint32_t index, const int8_t *bytes, uint32_t n,
                      uint64_t value) {
  static char line[16 + 2 * MODEL_OUTPUT_BYTES + 24];
  char *p = line;
  uint32_t i;
  while (*tag) {
    *p++ = *tag++;
  }
  *p++ = ' ';
  p = sqz_hex(p, index, 4);
  *p++ = ' ';
  for (i = 0; i < n; ++i) {
    p = sqz_hex(p, (uint8_t)bytes[i], 2);
  }
  *p++ = ' ';
  p = sqz_hex(p, (uint32_t)(value >> 32), 8);
  p = sqz_hex(p, (uint32_t)value, 8);
  *p++ = '\n';
  *p = 0;
  sqz_write(line);
}

/* 2 instructions (subs, bne) per iteration */
static void sqz_calibration_loop(uint32_t n) {
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

int main(void) {
  static int8_t out[MODEL_OUTPUT_BYTES];
  uint32_t i;
  uint64_t t0;
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* enable, interrupt on reload, processor clock */
  while (SYST_CVR == 0) { /* the first reload: from here the count is monotonic */
  }
  t0 = sqz_ticks();
  sqz_calibration_loop(SQZ_CALIBRATION_LOOPS);
  sqz_print("cal", 0, out, 0, sqz_ticks() - t0);
  for (i = 0; i < SQZ_N_IMAGES; ++i) {
    t0 = sqz_ticks();
    if (model_run(sqz_images[i], out) != 0) {
      return 2;
    }
    sqz_print("out", i, out, MODEL_OUTPUT_BYTES, sqz_ticks() - t0);
  }
  sqz_write("done\n");
  return 0;
}
