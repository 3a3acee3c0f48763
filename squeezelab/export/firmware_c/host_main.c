/* host_main.c: the host runner of a generated model (squeezelab's host check).
 * Reads N inputs of MODEL_INPUT_BYTES int8 each from stdin, writes N outputs to stdout. */
#include <stdio.h>

#include "model.h"

int main(void) {
  static int8_t in[MODEL_INPUT_BYTES];
  static int8_t out[MODEL_OUTPUT_BYTES];
  while (fread(in, 1, sizeof in, stdin) == sizeof in) {
    if (model_run(in, out) != 0 || fwrite(out, 1, sizeof out, stdout) != sizeof out) {
      return 1;
    }
  }
  return ferror(stdin) ? 1 : 0;
}
