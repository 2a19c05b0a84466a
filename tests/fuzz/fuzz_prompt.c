/* libFuzzer target: CLIP tokenization and ComfyUI prompt weighting of
 * arbitrary bytes (invalid UTF-8, unbalanced parentheses, weights,
 * `embedding:` words found by a fake lookup), checking the chunk layout. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIM 3

/* Names of one lower-case letter exist, with (letter - 'a') % 3 rows. */
static int lookup(void *opaque, const char *name, int dim, float **vectors, int *n)
{
    (void)opaque;
    if (strlen(name) != 1 || name[0] < 'a' || name[0] > 'z' || dim != DIM)
        return VKF_ENOTFOUND;
    int rows = (name[0] - 'a') % 3;
    float *v = vkf_calloc((size_t)(rows ? rows : 1) * DIM, sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    *vectors = v;
    *n = rows;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vkf_clip_tokenizer *tok;
    if (!tok && vkf_clip_tokenizer_create(&tok) < 0)
        abort();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    int32_t *ids = NULL;
    int n = 0;
    if (vkf_clip_tokenize(tok, text, &ids, &n) < 0 || !ids)
        abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= VKF_CLIP_VOCAB)
            abort();
    vkf_free(ids);

    vkf_clip_tokenize_params p = {.pad_with_end = size & 1, .embed_dim = DIM,
                                  .lookup = (size & 2) ? lookup : NULL};
    vkf_clip_tokens out;
    int err = vkf_clip_tokenize_weighted(tok, text, &p, &out);
    if (err == 0) {
        if (out.n_chunks < 1)
            abort();
        int32_t pad = p.pad_with_end ? VKF_CLIP_EOS : 0;
        for (int c = 0; c < out.n_chunks; c++) {
            const vkf_clip_token *t = out.tok + c * VKF_CLIP_CTX;
            if (t[0].id != VKF_CLIP_BOS || (t[76].id != VKF_CLIP_EOS && t[76].id != pad))
                abort();
            for (int i = 0; i < VKF_CLIP_CTX; i++)
                if (t[i].id >= VKF_CLIP_VOCAB || -1 - t[i].id >= out.n_embeds)
                    abort();
        }
        if (out.n_embeds && (!out.embeds || out.embed_dim != DIM))
            abort();
    } else if (err != VKF_EINVAL || out.tok) {
        abort();
    }
    vkf_clip_tokens_free(&out);
    free(text);
    return 0;
}
