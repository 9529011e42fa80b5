/* Drives the prebuilt callback library through a few periods and prints what it played (tests/engine/test_native.py).
 * Built for another architecture and run under qemu-user: checks the library there, not only its ELF header.
 * One channel, periods of 4, ring of 64; the worker is played by this program: it publishes `ready`. The last
 * period also halves the output gain (the fallback is attenuated too; no ramp). The input
 * the fallback plays holds a NaN and a sample over full scale. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../ravelive/engine/native/rtcallback.h"

int main(void) {
    static float input[64], output[64], in[4], out[4], last[1];
    static const float fade_in[2] = {1.0f / 3, 2.0f / 3};
    struct rl_state s;
    memset(&s, 0, sizeof s);
    s.channels = 1, s.ring_frames = 64, s.max_frames = 16, s.fade = 2, s.fallback = 0, s.wake_fd = -1;
    s.input = input, s.output = output, s.fade_in = fade_in, s.last = last;
    s.gain_ramp = 1, s.audio_channels = 1, s.gain_now = 1.0, s.gain_target = 1 << 30, s.last_late_block = -1;
    rl_store((int64_t *)&s.gain, 1 << 30); /* as engine/native.py sets them (no limiter) */
    rl_store((int64_t *)&s.latency, 8);
    rl_store((int64_t *)&s.block, 4);
    rl_store((int64_t *)&s.wake_at, 1 << 30);
    for (int period = 0; period < 6; period++) {
        for (int i = 0; i < 4; i++) in[i] = (float)(period * 4 + i + 1) / 100;
        if (period == 3) in[1] = NAN, in[2] = 5.0f; /* played by the fallback: 0, and clipped to the ceiling */
        if (period < 3) { /* the "worker" keeps up for three periods: output = input 8 frames later */
            for (int i = 0; i < 4; i++) output[(period * 4 + 8 + i) % 64] = in[i] * 10;
            rl_store((int64_t *)&s.ready, period * 4 + 12);
        }
        if (period == 5) rl_store((int64_t *)&s.gain, 1 << 29); /* the output gain down to a half */
        rl_callback(in, out, 4, NULL, period == 5 ? 4 : 0, &s);
        for (int i = 0; i < 4; i++) printf("%g ", out[i]);
    }
    printf("\nperiods %lld xruns %lld late_periods %lld late_blocks %lld played %lld\n", (long long)s.periods,
           (long long)s.xruns, (long long)s.late_periods, (long long)s.late_blocks,
           (long long)rl_load((int64_t *)&s.played));
    return 0;
}
