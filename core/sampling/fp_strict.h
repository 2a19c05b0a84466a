/*
 * Private: include first in every sampling source.  The reproduction of
 * torch's numerics needs each product and sum rounded on its own except
 * where the code calls fmaf(); a compiler that contracts a*b+c into an FMA
 * on its own (GCC in GNU C mode with -mfma or -march=native, clang by
 * default) changes the last bit.  Turn contraction off for these files
 * whatever the build flags.
 */
#ifndef VKF_SAMPLING_FP_STRICT_H
#define VKF_SAMPLING_FP_STRICT_H

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#endif
