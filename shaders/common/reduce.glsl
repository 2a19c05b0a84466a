/* Workgroup reductions over RED_WG invocations (power of two). */
shared float red_buf[RED_WG];

float wg_sum(float v)
{
    uint l = gl_LocalInvocationID.x;
    red_buf[l] = v;
    barrier();
    for (uint s = RED_WG / 2u; s > 0u; s >>= 1) {
        if (l < s)
            red_buf[l] += red_buf[l + s];
        barrier();
    }
    float r = red_buf[0];
    barrier();
    return r;
}

float wg_max(float v)
{
    uint l = gl_LocalInvocationID.x;
    red_buf[l] = v;
    barrier();
    for (uint s = RED_WG / 2u; s > 0u; s >>= 1) {
        if (l < s)
            red_buf[l] = max(red_buf[l], red_buf[l + s]);
        barrier();
    }
    float r = red_buf[0];
    barrier();
    return r;
}
