/* libFuzzer target: the PyTorch zip + pickle reader, then every tensor's
 * data and conversion, and family detection (built with -Dfuzz=true). */
#include <stddef.h>
#include <stdint.h>

#include "io/weights_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vkf_weights *w = NULL;
    if (wt_open_memory_as(data, size, "fuzz.pt", WT_READER_PICKLE, &w, NULL) == 0) {
        float buf[256];
        for (int i = 0; i < vkf_weights_count(w); i++) {
            const vkf_weight_info *t = vkf_weights_at(w, i);
            if (t->numel <= 256)
                (void)vkf_weights_to_f32(w, t, buf);
        }
        vkf_detect_result det;
        vkf_weights_detect(w, &det);
        vkf_weights_close(&w);
    }
    return 0;
}
