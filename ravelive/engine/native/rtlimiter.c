/* The true-peak safety limiter, one sample at a time, in place on interleaved float frames.
 *
 * The design, its constants and the interpolator's taps are ravelive/dsp/limiter.py's (set by Python in
 * struct rl_limiter); this is its streaming form, run by the audio callback after the output gain (so a
 * boost is limited in the period it is heard) and by `TruePeakLimiter` for everything else. Taking in
 * x[n] (all channels) completes, for t = n - D:
 *   e[n-K]  interval peak over [n-K, n-K+1]: both samples and the points between (x[n-2K+1 .. n])
 *   q[n-K]  min(1, ceiling / (headroom * max(e[n-K-1], e[n-K])))
 *   m[t]    min q[t .. t+L-1]                       (D = L - 1 + K, so t + L - 1 = n - K)
 *   u[t]    max(1 - m[t], beta * u[t-1]), 0 below `floor`; r[t] = 1 - u[t]
 *   g[t]    mean r[t-L+1 .. t]: exactly 1.0 while every r in the window is
 *   y[t]    g[t] * x[t] on the audio channels; the channels above them (CV jacks) are delayed unscaled.
 * A non-finite input sample is taken as 0 (and so plays 0).
 */
#include "rtcallback.h"

#include <math.h>

/* x[j] for j in (n - history, n]: the circular history is written twice, so every window is contiguous. */
static const double *at(const struct rl_limiter *l, int64_t n, int64_t j) {
    return l->x + ((n % l->history) + l->history - (n - j)) * l->channels;
}

/* e[n-K]: max |x| over [n-K, n-K+1], both samples and the points between (from x[n-2K+1 .. n]). */
static double interval_peak(const struct rl_limiter *l, int64_t n) {
    int64_t channels = l->channels, k = l->half_taps, i = n - k;
    const double *window = at(l, n, n - 2 * k + 1); /* x[i-K+1 .. i+K], frame after frame */
    double peak = 0.0;
    for (int64_t c = 0; c < l->audio_channels; c++) {
        double here = fabs(at(l, n, i)[c]), next = fabs(at(l, n, i + 1)[c]);
        if (here > peak) peak = here;
        if (next > peak) peak = next;
        for (int64_t p = 0; p < l->phases; p++) {
            const double *taps = l->taps + p * 2 * k;
            double point = 0.0;
            for (int64_t j = 0; j < 2 * k; j++) point += taps[j] * window[j * channels + c];
            if (fabs(point) > peak) peak = fabs(point);
        }
    }
    return peak;
}

/* q for position n - K, once x[n] is in. */
static double required(struct rl_limiter *l, int64_t n) {
    double e = interval_peak(l, n);
    double peak = (e > l->e_last ? e : l->e_last) * l->headroom;
    l->e_last = e;
    return peak > l->ceiling ? l->ceiling / peak : 1.0;
}

void rl_limit(struct rl_limiter *l, float *frames, int64_t count) {
    int64_t channels = l->channels, size = l->history, lookahead = l->lookahead;
    for (int64_t f = 0; f < count; f++) {
        float *frame = frames + f * channels;
        int64_t n = l->n++;
        double *slot = l->x + (n % size) * channels, *twin = slot + size * channels;
        for (int64_t c = 0; c < channels; c++) slot[c] = twin[c] = isfinite(frame[c]) ? frame[c] : 0.0; /* a NaN kept
            in the history would disable the detector for good */
        double q = required(l, n);
        l->q[n % lookahead] = q;
        l->since_limited = q < 1.0 ? 0 : l->since_limited + 1;
        double m = 1.0;
        if (l->since_limited < lookahead) {
            for (int64_t j = 0; j < lookahead; j++) m = l->q[j] < m ? l->q[j] : m;
        }
        double u = l->beta * l->reduction;
        if (1.0 - m > u) u = 1.0 - m;
        if (u < l->floor) u = 0.0; /* released: the gain is exactly 1.0 again */
        l->reduction = u;
        double r = 1.0 - u;
        double *oldest = l->r + n % lookahead; /* r[t - L], leaving the window */
        l->r_below += (r < 1.0) - (*oldest < 1.0);
        l->r_sum += r - *oldest;
        *oldest = r;
        double g = l->r_below == 0 ? 1.0 : l->r_sum / (double)lookahead;
        if (l->r_below == 0) l->r_sum = (double)lookahead; /* unity again: no drift carried into the next peak */
        l->gain = g;
        const double *due = at(l, n, n - l->delay); /* x[t], t = n - D */
        for (int64_t c = 0; c < channels; c++) frame[c] = (float)(c < l->audio_channels ? g * due[c] : due[c]);
    }
}
