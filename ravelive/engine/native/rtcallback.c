/* ravelive's audio callback: rings, fallback, counters and the worker's wake-up, with no Python and no lock.
 *
 * One period of `frames` frames starting at device frame `start` (= played):
 *   1. the captured input (or the looped file, or silence) goes into the input ring at `start`;
 *   2. `played` advances; if a whole push is now captured (played >= wake_at), one byte wakes the worker;
 *   3. the output ring is played where the worker has published it (below `ready`); the rest of the
 *      period plays the fallback (the input `latency` frames back, or silence), faded in from the last
 *      sample played, and the first period that is ready again fades back to the model; the dry input
 *      bypasses the worker's output stage, so it is made safe here: a non-finite sample plays 0 (it must
 *      not reach the limiter's state), the rest is clipped to the limiter's ceiling;
 *   4. unless --no-limiter, the DC blocker (rtdcblock.c); the output gain (ramped); unless --no-limiter, the
 *      true-peak limiter (rtlimiter.c): the ring is read the limiter's delay ahead of the device, so what
 *      it plays is still at `start + latency`;
 *   5. what was played is copied for the recorder, and the period is counted.
 * The same function runs on PortAudio's thread (a PaStreamCallback: rl_callback's signature is
 * PortAudio's) and on the clock thread below, which paces headless runs from absolute deadlines.
 */
#define _GNU_SOURCE
#include "rtcallback.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RL_SOURCE_HASH
#define RL_SOURCE_HASH "unknown"
#endif

/* Searched for in the file's bytes (tools/build_native.py, tests): which source this library was built from. */
static const char source_hash[] = "RAVELIVE_RT_SOURCE=" RL_SOURCE_HASH;

_Static_assert(sizeof(pthread_t) <= sizeof(uint64_t), "pthread_t must fit clock_thread");
_Static_assert(sizeof(_Atomic int64_t) == sizeof(int64_t), "the cffi declarations read _Atomic int64_t as int64_t");

enum { XRUN_FLAGS = 0xF }; /* paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow */

static int64_t wrap(int64_t position, int64_t size) {
    int64_t index = position % size;
    return index < 0 ? index + size : index;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Copy `frames` frames into a ring at absolute `position` (at most two memcpy). */
static void ring_write(float *ring, int64_t size, int64_t channels, int64_t position, const float *source,
                       int64_t frames) {
    int64_t start = wrap(position, size);
    int64_t first = frames < size - start ? frames : size - start;
    memcpy(ring + start * channels, source, (size_t)(first * channels) * sizeof(float));
    memcpy(ring, source + first * channels, (size_t)((frames - first) * channels) * sizeof(float));
}

static void ring_read(const float *ring, int64_t size, int64_t channels, int64_t position, float *target,
                      int64_t frames) {
    int64_t start = wrap(position, size);
    int64_t first = frames < size - start ? frames : size - start;
    memcpy(target, ring + start * channels, (size_t)(first * channels) * sizeof(float));
    memcpy(target + first * channels, ring, (size_t)((frames - first) * channels) * sizeof(float));
}

static void capture(struct rl_state *s, int64_t start, const float *input, int64_t frames) {
    int64_t channels = s->channels;
    if (s->file != NULL) {
        int64_t done = 0;
        while (done < frames) {
            int64_t take = frames - done;
            if (take > s->file_frames - s->file_position) take = s->file_frames - s->file_position;
            ring_write(s->input, s->ring_frames, channels, start + done, s->file + s->file_position * channels, take);
            done += take;
            s->file_position = (s->file_position + take) % s->file_frames;
        }
    } else if (input != NULL) {
        ring_write(s->input, s->ring_frames, channels, start, input, frames);
    } else {
        for (int64_t done = 0; done < frames;) { /* silence, written in place */
            int64_t index = wrap(start + done, s->ring_frames);
            int64_t take = frames - done < s->ring_frames - index ? frames - done : s->ring_frames - index;
            memset(s->input + index * channels, 0, (size_t)(take * channels) * sizeof(float));
            done += take;
        }
    }
}

#define FALLBACK_CEILING 0.89125094f /* -1 dBFS: dsp/limiter.py's CEILING_DBTP, on the samples */

/* A dry input sample as the fallback may play it: finite and within the ceiling. */
static float safe_dry(float x) {
    if (!isfinite(x)) return 0.0f;
    return x > FALLBACK_CEILING ? FALLBACK_CEILING : x < -FALLBACK_CEILING ? -FALLBACK_CEILING : x;
}

/* The fallback for `frames` frames from device frame `position`. */
static void fallback(struct rl_state *s, int64_t position, float *target, int64_t frames) {
    if (s->fallback == 0) {
        ring_read(s->input, s->ring_frames, s->channels, position - atomic_load(&s->latency), target, frames);
        for (int64_t i = 0; i < frames * s->channels; i++) target[i] = safe_dry(target[i]);
    } else {
        memset(target, 0, (size_t)(frames * s->channels) * sizeof(float));
    }
}

#define GAIN_ONE ((double)(1 << 30)) /* `gain` of exactly 1.0 */

/* The output gain, as the period plays: a fader is heard in this period, not after the model's next block.
 * Each change ramps linearly over gain_ramp frames, so it never clicks. */
static void apply_gain(struct rl_state *s, float *out, int64_t frames) {
    int64_t target = atomic_load_explicit(&s->gain, memory_order_relaxed);
    double goal = (double)target / GAIN_ONE, now = s->gain_now;
    if (target != s->gain_target) {
        s->gain_target = target;
        s->gain_step = (goal - now) / (double)(s->gain_ramp > 0 ? s->gain_ramp : 1);
    }
    if (now == 1.0 && goal == 1.0) return;
    double step = s->gain_step;
    int64_t channels = s->channels, audio = s->audio_channels < channels ? s->audio_channels : channels;
    for (int64_t i = 0; i < frames; i++) {
        if (now != goal) now = (step > 0 ? now + step >= goal : now + step <= goal) ? goal : now + step;
        for (int64_t c = 0; c < audio; c++) out[i * channels + c] *= (float)now;
    }
    s->gain_now = now;
}

static void count_late(struct rl_state *s, int64_t start, int64_t ready, int64_t frames) {
    int64_t latency = atomic_load_explicit(&s->latency, memory_order_relaxed);
    int64_t block = atomic_load_explicit(&s->block, memory_order_relaxed);
    int64_t first = floor_div(start + ready - latency, block); /* the input block whose output is missing */
    int64_t last = floor_div(start + frames - 1 - latency, block);
    if (first <= s->last_late_block) first = s->last_late_block + 1;
    int64_t blocks = last >= first ? last - first + 1 : 0;
    if (last > s->last_late_block) s->last_late_block = last;
    if (start < s->startup) { /* the audio thread's and the worker's first cycles, not the model's pace */
        atomic_fetch_add_explicit(&s->startup_late_periods, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->startup_late_blocks, blocks, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&s->late_periods, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->late_blocks, blocks, memory_order_relaxed);
    }
}

static void enter_fallback(struct rl_state *s, int64_t start, int64_t ready, float *out, int64_t frames) {
    int64_t channels = s->channels;
    if (ready > 0) {
        ring_read(s->output, s->ring_frames, channels, start, out, ready);
        memcpy(s->last, out + (ready - 1) * channels, (size_t)channels * sizeof(float));
    }
    float *rest = out + ready * channels;
    fallback(s, start + ready, rest, frames - ready);
    if (!s->in_fallback) {
        int64_t n = frames - ready < s->fade ? frames - ready : s->fade;
        for (int64_t i = 0; i < n; i++) {
            float gain = s->fade_in[i];
            for (int64_t c = 0; c < channels; c++) {
                rest[i * channels + c] = rest[i * channels + c] * gain + s->last[c] * (1.0f - gain);
            }
        }
    }
    s->in_fallback = 1;
    count_late(s, start, ready, frames);
}

static void leave_fallback(struct rl_state *s, int64_t start, float *out, int64_t frames) {
    int64_t channels = s->channels;
    int64_t n = frames < s->fade ? frames : s->fade;
    int64_t source = start - atomic_load_explicit(&s->latency, memory_order_relaxed);
    for (int64_t i = 0; i < n; i++) {
        float gain = s->fade_in[i];
        const float *dry = s->input + wrap(source + i, s->ring_frames) * channels;
        for (int64_t c = 0; c < channels; c++) {
            float fallen = s->fallback == 0 ? safe_dry(dry[c]) : 0.0f;
            out[i * channels + c] = out[i * channels + c] * gain + fallen * (1.0f - gain);
        }
    }
    s->in_fallback = 0;
}

static void record(struct rl_state *s, const float *out, int64_t frames) {
    int64_t recorded = atomic_load_explicit(&s->recorded, memory_order_relaxed);
    int64_t saved = atomic_load_explicit(&s->saved, memory_order_acquire);
    if (recorded + frames - saved > s->record_frames) {
        atomic_fetch_add_explicit(&s->record_lost, frames, memory_order_relaxed);
        return;
    }
    ring_write(s->record, s->record_frames, s->channels, recorded, out, frames);
    atomic_store_explicit(&s->recorded, recorded + frames, memory_order_release);
}

/* First period on this thread: record who runs it and raise it to SCHED_FIFO when asked and not realtime. */
static void first_period(struct rl_state *s) {
    int policy;
    struct sched_param param;
    atomic_store(&s->audio_thread, (int64_t)syscall(SYS_gettid));
    int64_t result = 3;
    if (pthread_getschedparam(pthread_self(), &policy, &param) == 0 && (policy == SCHED_FIFO || policy == SCHED_RR)) {
        result = 2;
    } else if (s->rt_priority > 0) {
        param.sched_priority = (int)s->rt_priority;
        int error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
        result = error == 0 ? 1 : -error;
    }
    if (pthread_getschedparam(pthread_self(), &policy, &param) == 0) {
        atomic_store(&s->rt_priority_now, (policy == SCHED_FIFO || policy == SCHED_RR) ? param.sched_priority : 0);
    }
    atomic_store(&s->rt_result, result);
}

int rl_callback(const void *input, void *output, unsigned long frame_count, const rl_time_info *time_info,
                unsigned long status, void *state) {
    (void)time_info;
    struct rl_state *s = state;
    float *out = output;
    int64_t frames = (int64_t)frame_count;
    int64_t start = atomic_load_explicit(&s->played, memory_order_relaxed);
    if (atomic_load_explicit(&s->rt_result, memory_order_relaxed) == 0) first_period(s);
    if (frames > s->max_frames) { /* more than the rings were sized for: silence, the timeline kept */
        memset(out, 0, (size_t)(frames * s->channels) * sizeof(float));
        atomic_fetch_add_explicit(&s->callback_errors, 1, memory_order_relaxed);
        atomic_store(&s->played, start + frames);
    } else if (frames > 0) {
        capture(s, start, input, frames);
        atomic_store(&s->played, start + frames); /* seq_cst: the worker stores wake_at, then loads played */
        if (start + frames >= atomic_load(&s->wake_at)) {
            static const char byte = 0;
            ssize_t written = write((int)s->wake_fd, &byte, 1); /* EAGAIN: the pipe is full, the worker awake */
            (void)written;
        }
        int64_t at = start + (s->safety ? s->limiter.delay : 0); /* the limiter plays it `delay` frames later */
        int64_t ready = atomic_load_explicit(&s->ready, memory_order_acquire) - at;
        if (ready >= frames) {
            ring_read(s->output, s->ring_frames, s->channels, at, out, frames);
            if (s->in_fallback) leave_fallback(s, at, out, frames);
        } else {
            enter_fallback(s, at, ready > 0 ? ready : 0, out, frames);
        }
        memcpy(s->last, out + (frames - 1) * s->channels, (size_t)s->channels * sizeof(float)); /* before the gain */
        if (s->safety) rl_dc_block(&s->dc_blocker, out, frames);
        apply_gain(s, out, frames); /* the fallback too: a fader down silences a late block's dry input */
        if (s->safety) rl_limit(&s->limiter, out, frames);
        if (s->record != NULL) record(s, out, frames);
    }
    if (status & XRUN_FLAGS) atomic_fetch_add_explicit(&s->xruns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->periods, 1, memory_order_release);
    return 0; /* paContinue */
}

int64_t rl_load(const int64_t *position) {
    return atomic_load((const _Atomic int64_t *)position);
}

void rl_store(int64_t *position, int64_t value) {
    atomic_store((_Atomic int64_t *)position, value);
}

void rl_use_midi_gain(struct rl_state *s, struct rl_midi_gain *table) {
    atomic_store_explicit(&s->midi_gain, table, memory_order_release); /* the table is written before */
}

/* Headless mode: one period per period of real time, from absolute deadlines (no drift). */
static void *clock_main(void *argument) {
    struct rl_state *s = argument;
    struct timespec origin, deadline;
    clock_gettime(CLOCK_MONOTONIC, &origin);
    int64_t elapsed = 0; /* frames since the start: deadlines computed from it never accumulate rounding */
    while (atomic_load(&s->clock_run)) {
        rl_callback(NULL, s->clock_output, (unsigned long)s->clock_period, NULL, 0, s);
        elapsed += s->clock_period;
        int64_t ns = (int64_t)((__int128)elapsed * 1000000000 / s->clock_rate);
        deadline.tv_sec = origin.tv_sec + (time_t)(ns / 1000000000);
        deadline.tv_nsec = origin.tv_nsec + (long)(ns % 1000000000);
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
        }
    }
    return NULL;
}

int rl_clock_start(struct rl_state *s, int64_t period, int64_t sample_rate) {
    if (period < 1 || period > s->max_frames || sample_rate < 1) return EINVAL;
    if (atomic_load(&s->clock_run)) return EBUSY;
    s->clock_period = period;
    s->clock_rate = sample_rate;
    atomic_store(&s->clock_run, 1);
    pthread_t thread;
    int error = pthread_create(&thread, NULL, clock_main, s);
    if (error != 0) {
        atomic_store(&s->clock_run, 0);
        return error;
    }
    memcpy(&s->clock_thread, &thread, sizeof thread);
    return 0;
}

void rl_clock_stop(struct rl_state *s) {
    if (!atomic_exchange(&s->clock_run, 0)) return;
    pthread_t thread;
    memcpy(&thread, &s->clock_thread, sizeof thread);
    pthread_join(thread, NULL);
}

int64_t rl_state_size(void) {
    return (int64_t)sizeof(struct rl_state);
}

const char *rl_source_hash(void) {
    return source_hash + sizeof "RAVELIVE_RT_SOURCE=" - 1;
}
