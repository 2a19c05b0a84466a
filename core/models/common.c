/* Shared helpers of the model code: error text, reference counts. */
#include <stdarg.h>
#include <stdio.h>

#include "vkflow/models.h"

int vkf_errbuf_set(vkf_errbuf *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

vkf_diffusion_model *vkf_diffusion_model_ref(vkf_diffusion_model *m)
{
    if (m)
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void vkf_diffusion_model_unref(vkf_diffusion_model **m)
{
    if (!*m)
        return;
    if (__atomic_sub_fetch(&(*m)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        (*m)->destroy(*m);
    *m = NULL;
}

vkf_vae_model *vkf_vae_model_ref(vkf_vae_model *m)
{
    if (m)
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void vkf_vae_model_unref(vkf_vae_model **m)
{
    if (!*m)
        return;
    if (__atomic_sub_fetch(&(*m)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        (*m)->destroy(*m);
    *m = NULL;
}
