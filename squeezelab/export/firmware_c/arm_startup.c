/* arm_startup.c: reset, vector table and semihosting of squeezelab's Cortex-M firmware.
 * No C library: the runner prints through semihosting calls of its own (bkpt 0xAB). */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

volatile uint32_t sqz_systick_wraps; /* SysTick reloads, for timing beyond 2^24 ticks */

static int sqz_semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void sqz_write(const char *text) { (void)sqz_semihost(0x04, text); } /* SYS_WRITE0 */

void sqz_exit(int code) {
  /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with the exit code */
  uint32_t block[2];
  block[0] = 0x20026u;
  block[1] = (uint32_t)code;
  (void)sqz_semihost(0x20, block);
  for (;;) {
  }
}

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
  *cpacr |= 0xFu << 20; /* FPU on: the C library-free code uses none, but a caller may */
  while (dst < &_edata) {
    *dst++ = *src++;
  }
  for (dst = &_sbss; dst < &_ebss; ++dst) {
    *dst = 0;
  }
  sqz_exit(main());
}

void SysTick_Handler(void) { ++sqz_systick_wraps; }

void Fault_Handler(void) {
  sqz_write("fault\n");
  sqz_exit(3);
}

typedef void (*sqz_vector_t)(void);
__attribute__((section(".isr_vector"), used)) const sqz_vector_t sqz_vectors[16] = {
    (sqz_vector_t)(uintptr_t)&_estack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, SysTick_Handler};
