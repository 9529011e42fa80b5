/* The realtime audio callback of ravelive, in C: the shared state and the entry points.
 *
 * Everything between "cdef begin" and "cdef end" is also read by ravelive/engine/native.py as its cffi
 * declarations (with `_Atomic ` removed), so the struct is defined once. Plain C11, no Python.h, no
 * PortAudio headers: rl_callback has PortAudio's PaStreamCallback signature, declared here.
 */
#ifndef RAVELIVE_RTCALLBACK_H
#define RAVELIVE_RTCALLBACK_H

#include <stdint.h>

/* cdef begin */
typedef struct {
    double inputBufferAdcTime;
    double currentTime;
    double outputBufferDacTime;
} rl_time_info; /* PaStreamCallbackTimeInfo */

struct rl_limiter {        /* rtlimiter.c: the true-peak limiter's constants (dsp/limiter.py's) and state */
    int64_t channels;       /* channels of a frame, all delayed by `delay` */
    int64_t audio_channels; /* the first ones: detected and limited (the CV jacks above them pass unscaled) */
    int64_t lookahead;      /* L: the attack ramp, in samples */
    int64_t half_taps;      /* K: interpolator taps each side of a point */
    int64_t phases;         /* points between two samples */
    int64_t delay;          /* D = L - 1 + K: input n comes out as output n + D */
    int64_t history;        /* frames of `x`, at least D + 1 and 2K */
    double ceiling;         /* linear */
    double headroom;        /* the detector's estimates are raised by this factor */
    double beta;            /* release decay per sample */
    double floor;           /* a reduction below this is none */
    const double *taps;     /* [phases][2K]: point p after sample i from x[i-K+1 .. i+K] */
    double *x;              /* [2 * history][channels]: the input, circular, written twice (zeros before the start) */
    double *q;              /* [lookahead]: the last L required gains, circular (ones before the start) */
    double *r;              /* [lookahead]: the last L released gains, circular (ones before the start) */
    int64_t n;              /* frames taken in */
    int64_t since_limited;  /* q values since the last one below 1 (from `lookahead` on, m = 1: no scan) */
    int64_t r_below;        /* r values below 1 in the window (0: the gain is exactly 1.0) */
    double r_sum;           /* sum of the window's r */
    double e_last;          /* interval peak of the last interval */
    double reduction;       /* u of the last position, where the release goes on from */
    double gain;            /* the gain on the last frame out (1.0: not limiting) */
};

struct rl_dc_blocker {     /* rtdcblock.c: dsp/dc_blocker.py's one-pole high-pass on the audio channels */
    int64_t channels;       /* channels of a frame */
    int64_t audio_channels; /* the first ones, filtered (the CV jacks above them pass: their DC is the signal) */
    double pole;            /* R */
    double *x;              /* [audio_channels]: the last input sample */
    double *y;              /* [audio_channels]: the last output sample */
};

struct rl_midi_gain {       /* rtjack.c: absolute 7-bit CCs bound to gain/out, as the MIDI control thread compiles
                               them (control/midi/gain_table.py): the JACK client applies one in the cycle it comes */
    int16_t row[16][128];   /* channel (0-15), CC number -> the row of `gain` it sets; -1: not bound */
    int64_t gain[16][128];  /* row, CC value -> the value `rl_state.gain` takes */
};

struct rl_state {
    /* Set once by Python before the first period. */
    int64_t channels;
    int64_t ring_frames;   /* frames in each of the input and output rings */
    int64_t max_frames;    /* longest period accepted; a longer one plays silence (a callback error) */
    int64_t fade;          /* frames of the fades into and out of the fallback */
    int64_t startup;       /* late periods that start before this frame count as start-up */
    int64_t fallback;      /* 0: the input delayed by the latency ("dry"), 1: silence */
    int64_t wake_fd;       /* non-blocking pipe: one byte once a whole push is captured */
    int64_t rt_priority;   /* > 0: the first period raises its thread to SCHED_FIFO at this priority */
    float *input;          /* [ring_frames][channels]: captured input at absolute frame positions */
    float *output;         /* [ring_frames][channels]: the worker's output at absolute frame positions */
    const float *fade_in;  /* [fade]: rising gains, 0 and 1 excluded; the fade out is 1 - fade_in */
    float *last;           /* [channels]: the last sample played, where a fade into the fallback starts */
    const float *file;     /* NULL, or [file_frames][channels] played in a loop in place of the captured input */
    int64_t file_frames;
    int64_t file_position;
    float *record;         /* NULL, or [record_frames][channels]: what is played, drained by the recorder */
    int64_t record_frames;
    float *clock_output;   /* [max_frames][channels]: where the clock thread's periods play to */
    uint64_t clock_thread; /* pthread_t of the clock thread */
    int64_t clock_period;  /* frames per clock period */
    int64_t clock_rate;    /* clock frames per second */
    int64_t gain_ramp;     /* frames over which the output gain reaches a new `gain` */
    int64_t audio_channels; /* the first channels, the audio ones, take the gain (CV jacks above them do not) */
    int64_t safety;        /* 1: the DC blocker runs before the gain and the limiter after it (reading the ring
                              the limiter's delay ahead) */
    struct rl_dc_blocker dc_blocker;
    struct rl_limiter limiter;

    /* Positions on the device timeline (frames), each written by one side only. */
    _Atomic int64_t latency;   /* Python: input frame t plays at t + latency (the dry fallback's delay) */
    _Atomic int64_t block;     /* Python: stream frames per model block, the unit of late_blocks */
    _Atomic int64_t played;    /* callback: frames captured and played so far */
    _Atomic int64_t wake_at;   /* worker: wake it once `played` reaches this */
    _Atomic int64_t ready;     /* worker: the output ring is valid below this frame */
    _Atomic int64_t recorded;  /* callback: frames copied into `record` */
    _Atomic int64_t saved;     /* recorder: frames taken out of `record` */
    _Atomic int64_t clock_run; /* Python: 1 while the clock thread should run */
    _Atomic int64_t gain;      /* control thread: the output gain in units of 2^-30, applied to each period as it
                                  plays, before the limiter; also our JACK client, from a CC in `midi_gain` */
    struct rl_midi_gain *_Atomic midi_gain; /* control thread: NULL, or the CCs the JACK client applies itself */

    /* Counters, written by the callback only. */
    _Atomic int64_t periods;              /* periods run */
    _Atomic int64_t xruns;                /* periods whose status flags reported an under- or overflow */
    _Atomic int64_t late_periods;         /* periods that played some fallback (after start-up) */
    _Atomic int64_t late_blocks;          /* model blocks whose output missed its period (after start-up) */
    _Atomic int64_t startup_late_periods; /* the same two while the stream starts */
    _Atomic int64_t startup_late_blocks;
    _Atomic int64_t callback_errors;      /* periods longer than max_frames, played as silence */
    _Atomic int64_t record_lost;          /* frames the recorder had no room for */
    _Atomic int64_t audio_thread;         /* kernel thread id running the callback (its first period) */
    _Atomic int64_t rt_result;            /* 0: no period yet, 1: raised to SCHED_FIFO, 2: realtime already,
                                             3: not asked, < 0: -errno of the refusal */
    _Atomic int64_t rt_priority_now;      /* the audio thread's SCHED_FIFO/RR priority after the first period */
    _Atomic int64_t midi_gain_events;     /* CCs our JACK client applied to `gain` from `midi_gain` */

    /* Callback-private. */
    int64_t in_fallback;
    int64_t last_late_block;
    int64_t gain_target;       /* the `gain` the ramp goes to */
    double gain_now;           /* the output gain on the last sample played */
    double gain_step;          /* per sample, until gain_now reaches gain_target */
};

int rl_callback(const void *input, void *output, unsigned long frames, const rl_time_info *time_info,
                unsigned long status, void *state);
int64_t rl_load(const int64_t *position);
void rl_store(int64_t *position, int64_t value);
void rl_use_midi_gain(struct rl_state *state, struct rl_midi_gain *table); /* NULL: none */
int rl_clock_start(struct rl_state *state, int64_t period, int64_t sample_rate);
void rl_clock_stop(struct rl_state *state);
int64_t rl_state_size(void);
void rl_limit(struct rl_limiter *limiter, float *frames, int64_t count); /* in place, output `delay` late */
void rl_dc_block(struct rl_dc_blocker *blocker, float *frames, int64_t count); /* in place, no delay */
const char *rl_source_hash(void);

/* rtjack.c: our own JACK client running rl_callback (libjack is opened at run time, not linked). */
struct rl_jack;
struct rl_jack *rl_jack_open(struct rl_state *state, const char *client_name, const char *device, int64_t period,
                             int64_t sample_rate, char *error, int64_t error_size);
int64_t rl_jack_running(struct rl_jack *jack);
void rl_jack_close(struct rl_jack *jack);
int64_t rl_jack_period(char *error, int64_t error_size); /* the running server's frames per period; -1: none */
int rl_jack_connect_midi(struct rl_jack *jack, const char *source, char *error, int64_t error_size); /* 0: done */
/* cdef end */

#endif
