/* Declarations of the built-in node descriptors, one per file in nodes/. */
#ifndef VKF_NODES_H
#define VKF_NODES_H

#include "vkflow/node.h"

extern const vkf_node_def vkf_node_PrimitiveInt;
extern const vkf_node_def vkf_node_PrimitiveFloat;
extern const vkf_node_def vkf_node_PrimitiveString;
extern const vkf_node_def vkf_node_PrimitiveStringMultiline;
extern const vkf_node_def vkf_node_PrimitiveBoolean;
extern const vkf_node_def vkf_node_StringConcatenate;
extern const vkf_node_def vkf_node_PreviewAny;
extern const vkf_node_def vkf_node_LoadImage;
extern const vkf_node_def vkf_node_SaveImage;
extern const vkf_node_def vkf_node_PreviewImage;
extern const vkf_node_def vkf_node_CheckpointLoaderSimple;
extern const vkf_node_def vkf_node_CheckpointLoader;
extern const vkf_node_def vkf_node_UNETLoader;
extern const vkf_node_def vkf_node_CLIPLoader;
extern const vkf_node_def vkf_node_ModelSamplingDiscrete;
extern const vkf_node_def vkf_node_CLIPTextEncode;
extern const vkf_node_def vkf_node_CLIPSetLastLayer;
extern const vkf_node_def vkf_node_ConditioningCombine;
extern const vkf_node_def vkf_node_ConditioningAverage;
extern const vkf_node_def vkf_node_ConditioningConcat;
extern const vkf_node_def vkf_node_ConditioningSetArea;
extern const vkf_node_def vkf_node_ConditioningSetAreaPercentage;
extern const vkf_node_def vkf_node_ConditioningSetAreaStrength;
extern const vkf_node_def vkf_node_ConditioningSetMask;
extern const vkf_node_def vkf_node_ConditioningZeroOut;
extern const vkf_node_def vkf_node_ConditioningSetTimestepRange;
extern const vkf_node_def vkf_node_InpaintModelConditioning;
extern const vkf_node_def vkf_node_EmptyLatentImage;
extern const vkf_node_def vkf_node_LatentUpscale;
extern const vkf_node_def vkf_node_LatentUpscaleBy;
extern const vkf_node_def vkf_node_LatentComposite;
extern const vkf_node_def vkf_node_LatentCompositeMasked;
extern const vkf_node_def vkf_node_LatentBlend;
extern const vkf_node_def vkf_node_LatentFromBatch;
extern const vkf_node_def vkf_node_RepeatLatentBatch;
extern const vkf_node_def vkf_node_LatentBatch;
extern const vkf_node_def vkf_node_SetLatentNoiseMask;
extern const vkf_node_def vkf_node_SaveLatent;
extern const vkf_node_def vkf_node_LoadLatent;
extern const vkf_node_def vkf_node_KSampler;
extern const vkf_node_def vkf_node_KSamplerAdvanced;
extern const vkf_node_def vkf_node_SamplerCustom;
extern const vkf_node_def vkf_node_SamplerCustomAdvanced;
extern const vkf_node_def vkf_node_BasicGuider;
extern const vkf_node_def vkf_node_CFGGuider;
extern const vkf_node_def vkf_node_DualCFGGuider;
extern const vkf_node_def vkf_node_RandomNoise;
extern const vkf_node_def vkf_node_DisableNoise;
extern const vkf_node_def vkf_node_KSamplerSelect;
extern const vkf_node_def vkf_node_SamplerEulerAncestral;
extern const vkf_node_def vkf_node_SamplerEulerAncestralCFGPP;
extern const vkf_node_def vkf_node_SamplerDPMPP_2S_Ancestral;
extern const vkf_node_def vkf_node_SamplerDPMPP_3M_SDE;
extern const vkf_node_def vkf_node_SamplerDPMPP_2M_SDE;
extern const vkf_node_def vkf_node_SamplerDPMPP_SDE;
extern const vkf_node_def vkf_node_SamplerLMS;
extern const vkf_node_def vkf_node_BasicScheduler;
extern const vkf_node_def vkf_node_KarrasScheduler;
extern const vkf_node_def vkf_node_ExponentialScheduler;
extern const vkf_node_def vkf_node_PolyexponentialScheduler;
extern const vkf_node_def vkf_node_SDTurboScheduler;
extern const vkf_node_def vkf_node_AlignYourStepsScheduler;
extern const vkf_node_def vkf_node_BetaSamplingScheduler;
extern const vkf_node_def vkf_node_SplitSigmas;
extern const vkf_node_def vkf_node_SplitSigmasDenoise;
extern const vkf_node_def vkf_node_FlipSigmas;
extern const vkf_node_def vkf_node_VAEDecode;
extern const vkf_node_def vkf_node_VAEEncode;
extern const vkf_node_def vkf_node_VAEDecodeTiled;
extern const vkf_node_def vkf_node_VAEEncodeTiled;
extern const vkf_node_def vkf_node_VAEEncodeForInpaint;
extern const vkf_node_def vkf_node_VAELoader;

#endif
