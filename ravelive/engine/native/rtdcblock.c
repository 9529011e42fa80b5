/* The DC blocker, one sample at a time, in place on interleaved float frames.
 *
 * ravelive/dsp/dc_blocker.py's design (the pole, set by Python in struct rl_dc_blocker): per audio channel
 * y[n] = x[n] - x[n-1] + R y[n-1], in double. The audio callback runs it on each period before the output
 * gain (the model's output and the fallback alike); `DCBlocker` runs it on numpy arrays. The channels above
 * the audio ones (CV jacks, DC-coupled: their offset is the signal) pass untouched. A non-finite result
 * (a NaN reaching the filter) plays 0 and restarts the filter from silence, so it cannot stay in the state.
 */
#include "rtcallback.h"

#include <math.h>

void rl_dc_block(struct rl_dc_blocker *b, float *frames, int64_t count) {
    int64_t channels = b->channels, audio = b->audio_channels < channels ? b->audio_channels : channels;
    double pole = b->pole;
    for (int64_t c = 0; c < audio; c++) {
        double x1 = b->x[c], y1 = b->y[c];
        for (int64_t i = 0; i < count; i++) {
            double x = frames[i * channels + c], y = x - x1 + pole * y1;
            if (!isfinite(y)) x = y = 0.0;
            frames[i * channels + c] = (float)y;
            x1 = x;
            y1 = y;
        }
        b->x[c] = x1;
        b->y[c] = y1;
    }
}
