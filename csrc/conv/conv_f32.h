// Transitional: the float-input convs moved to fconv/conv_f32.h (Conv2dF32) and
// wbconv/wbconv.h (WBConv2d). Kept only for runtime/executor.h, whose include the lead updates
// at merge; then this file goes.
#pragma once
#include "fconv/conv_f32.h"
#include "wbconv/wbconv.h"
