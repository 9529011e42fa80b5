/* A JACK client of our own that runs rl_callback once per JACK period (see rtcallback.c).
 *
 * Why not PortAudio's JACK host API: PortAudio 19.6 cannot stop or close a stream whose JACK server
 * has gone (Pa_AbortStream waits for a process callback that never comes) and its Pa_Terminate then
 * fails an assertion, so a restarted server could never be used again in the same process. A client
 * of our own is closed and opened again. libjack is opened with dlopen, so the library needs no JACK
 * at build time and loads where JACK is not installed.
 *
 * MIDI on JACK: rtmidi's client receives a CC in the cycle after it was sent, and by the time the control
 * thread has decoded it and set the output gain, this cycle's callback has run: the knob is heard a cycle
 * later than it could be (at period 256 and a 512-frame model block, more than a block after the send). So
 * once the control thread connects a source here (rl_jack_connect_midi), a MIDI port of ours takes the same
 * messages, and each period starts by looking up the CCs it holds in the table the control thread compiled
 * (rl_state.midi_gain: absolute 7-bit CCs bound to gain/out) and setting the gain: a table lookup, no
 * decoding. The control thread still decodes every message and writes the store, which sets the same gain.
 */
#define _GNU_SOURCE
#include "rtcallback.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CHANNELS = 64, NO_START_SERVER = 0x01, PORT_IS_INPUT = 0x1, PORT_IS_OUTPUT = 0x2 };
#define AUDIO_TYPE "32 bit float mono audio"
#define MIDI_TYPE "8 bit raw midi"

typedef void jack_client_t;
typedef void jack_port_t;
typedef struct {
    uint32_t time;
    size_t size;
    unsigned char *buffer;
} jack_midi_event_t;

struct jack_api { /* the few libjack functions used, resolved once */
    jack_client_t *(*client_open)(const char *, int, int *, ...);
    int (*client_close)(jack_client_t *);
    jack_port_t *(*port_register)(jack_client_t *, const char *, const char *, unsigned long, unsigned long);
    void *(*port_get_buffer)(jack_port_t *, uint32_t);
    const char *(*port_name)(const jack_port_t *);
    int (*set_process_callback)(jack_client_t *, int (*)(uint32_t, void *), void *);
    void (*on_shutdown)(jack_client_t *, void (*)(void *), void *);
    int (*set_xrun_callback)(jack_client_t *, int (*)(void *), void *);
    int (*activate)(jack_client_t *);
    int (*deactivate)(jack_client_t *);
    int (*connect)(jack_client_t *, const char *, const char *);
    const char **(*get_ports)(jack_client_t *, const char *, const char *, unsigned long);
    void (*free)(void *);
    uint32_t (*get_sample_rate)(jack_client_t *);
    uint32_t (*get_buffer_size)(jack_client_t *);
    uint32_t (*midi_get_event_count)(void *);
    int (*midi_event_get)(jack_midi_event_t *, void *, uint32_t);
};

struct rl_jack {
    struct jack_api *api;
    struct rl_state *state;
    jack_client_t *client;
    int64_t channels;
    int64_t period;
    jack_port_t *inputs[MAX_CHANNELS];
    jack_port_t *outputs[MAX_CHANNELS];
    jack_port_t *_Atomic midi_in; /* registered by the first rl_jack_connect_midi */
    float *captured; /* [period][channels] interleaved */
    float *played;
    _Atomic int64_t running;
    _Atomic int64_t xrun;
};

static struct jack_api *load_api(char *error, int64_t size) {
    static struct jack_api api;
    static int loaded = 0;
    if (loaded) return &api;
    void *lib = dlopen("libjack.so.0", RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL) {
        snprintf(error, (size_t)size, "libjack.so.0 cannot be loaded (%s)", dlerror());
        return NULL;
    }
#define RESOLVE(field, name)                                                         \
    do {                                                                             \
        *(void **)&api.field = dlsym(lib, name);                                     \
        if (api.field == NULL) {                                                     \
            snprintf(error, (size_t)size, "libjack.so.0 has no %s", name);           \
            return NULL;                                                             \
        }                                                                            \
    } while (0)
    RESOLVE(client_open, "jack_client_open");
    RESOLVE(client_close, "jack_client_close");
    RESOLVE(port_register, "jack_port_register");
    RESOLVE(port_get_buffer, "jack_port_get_buffer");
    RESOLVE(port_name, "jack_port_name");
    RESOLVE(set_process_callback, "jack_set_process_callback");
    RESOLVE(on_shutdown, "jack_on_shutdown");
    RESOLVE(set_xrun_callback, "jack_set_xrun_callback");
    RESOLVE(activate, "jack_activate");
    RESOLVE(deactivate, "jack_deactivate");
    RESOLVE(connect, "jack_connect");
    RESOLVE(get_ports, "jack_get_ports");
    RESOLVE(free, "jack_free");
    RESOLVE(get_sample_rate, "jack_get_sample_rate");
    RESOLVE(get_buffer_size, "jack_get_buffer_size");
    RESOLVE(midi_get_event_count, "jack_midi_get_event_count");
    RESOLVE(midi_event_get, "jack_midi_event_get");
#undef RESOLVE
    loaded = 1;
    return &api;
}

/* The CCs of this cycle that the control thread's table binds to gain/out: the gain is theirs from this period. */
static void apply_midi_gain(struct rl_jack *j, uint32_t frames) {
    jack_port_t *port = atomic_load_explicit(&j->midi_in, memory_order_acquire);
    struct rl_midi_gain *table = atomic_load_explicit(&j->state->midi_gain, memory_order_acquire);
    if (port == NULL || table == NULL) return;
    void *buffer = j->api->port_get_buffer(port, frames);
    uint32_t count = j->api->midi_get_event_count(buffer);
    for (uint32_t i = 0; i < count; i++) {
        jack_midi_event_t event;
        if (j->api->midi_event_get(&event, buffer, i) != 0 || event.size != 3) continue;
        const unsigned char *bytes = event.buffer;
        if ((bytes[0] & 0xF0) != 0xB0 || bytes[1] > 127 || bytes[2] > 127) continue; /* not a whole CC */
        int row = table->row[bytes[0] & 0x0F][bytes[1]];
        if (row < 0) continue;
        atomic_store_explicit(&j->state->gain, table->gain[row][bytes[2]], memory_order_relaxed);
        atomic_fetch_add_explicit(&j->state->midi_gain_events, 1, memory_order_relaxed);
    }
}

static int process(uint32_t frames, void *argument) {
    struct rl_jack *j = argument;
    int64_t channels = j->channels, n = frames;
    float *out[MAX_CHANNELS];
    for (int64_t c = 0; c < channels; c++) out[c] = j->api->port_get_buffer(j->outputs[c], frames);
    if (n > j->period) { /* JACK's period grew past what the buffers hold: silence, counted as an error */
        for (int64_t c = 0; c < channels; c++) memset(out[c], 0, (size_t)n * sizeof(float));
        atomic_fetch_add(&j->state->callback_errors, 1);
        return 0;
    }
    for (int64_t c = 0; c < channels; c++) {
        const float *in = j->api->port_get_buffer(j->inputs[c], frames);
        for (int64_t i = 0; i < n; i++) j->captured[i * channels + c] = in[i];
    }
    apply_midi_gain(j, frames);
    unsigned long status = atomic_exchange(&j->xrun, 0) ? 0x4 : 0; /* paOutputUnderflow */
    rl_callback(j->captured, j->played, frames, NULL, status, j->state);
    for (int64_t c = 0; c < channels; c++) {
        for (int64_t i = 0; i < n; i++) out[c][i] = j->played[i * channels + c];
    }
    return 0;
}

static void shutdown_callback(void *argument) {
    struct rl_jack *j = argument;
    atomic_store(&j->running, 0);
}

static int xrun_callback(void *argument) {
    struct rl_jack *j = argument;
    atomic_store(&j->xrun, 1);
    return 0;
}

/* Connect our ports to the first `channels` ports of client `device` of the given direction. */
static int connect_ports(struct rl_jack *j, const char *device, int capture, char *error, int64_t size) {
    char pattern[256];
    snprintf(pattern, sizeof pattern, "^%s:", device);
    const char **ports = j->api->get_ports(j->client, pattern, AUDIO_TYPE, capture ? PORT_IS_OUTPUT : PORT_IS_INPUT);
    int64_t found = 0;
    while (ports != NULL && ports[found] != NULL) found++;
    if (found < j->channels) {
        snprintf(error, (size_t)size, "JACK client '%s' has %lld %s ports, %lld needed", device, (long long)found,
                 capture ? "capture" : "playback", (long long)j->channels);
        if (ports != NULL) j->api->free(ports);
        return -1;
    }
    for (int64_t c = 0; c < j->channels; c++) {
        const char *ours = j->api->port_name(capture ? j->inputs[c] : j->outputs[c]);
        int result = capture ? j->api->connect(j->client, ports[c], ours) : j->api->connect(j->client, ours, ports[c]);
        if (result != 0 && result != 17 /* EEXIST */) {
            snprintf(error, (size_t)size, "JACK refused to connect %s", ports[c]);
            j->api->free(ports);
            return -1;
        }
    }
    j->api->free(ports);
    return 0;
}

void rl_jack_close(struct rl_jack *j) {
    if (j == NULL) return;
    if (j->client != NULL) {
        if (atomic_load(&j->running)) j->api->deactivate(j->client);
        j->api->client_close(j->client); /* also after a shutdown: frees the client (returns an error then) */
    }
    free(j->captured);
    free(j->played);
    free(j);
}

int64_t rl_jack_period(char *error, int64_t error_size) {
    struct jack_api *api = load_api(error, error_size);
    if (api == NULL) return -1;
    int status = 0;
    jack_client_t *client = api->client_open("ravelive-probe", NO_START_SERVER, &status);
    if (client == NULL) {
        snprintf(error, (size_t)error_size, "no JACK server is running (jack_client_open status 0x%x)", status);
        return -1;
    }
    int64_t period = api->get_buffer_size(client);
    api->client_close(client);
    return period;
}

struct rl_jack *rl_jack_open(struct rl_state *state, const char *client_name, const char *device, int64_t period,
                             int64_t sample_rate, char *error, int64_t error_size) {
    struct jack_api *api = load_api(error, error_size);
    if (api == NULL) return NULL;
    if (state->channels > MAX_CHANNELS || period > state->max_frames) {
        snprintf(error, (size_t)error_size, "at most %d channels and %lld frames per period", MAX_CHANNELS,
                 (long long)state->max_frames);
        return NULL;
    }
    struct rl_jack *j = calloc(1, sizeof *j);
    if (j == NULL) return NULL;
    j->api = api, j->state = state, j->channels = state->channels, j->period = period;
    j->captured = calloc((size_t)(period * state->channels), sizeof(float));
    j->played = calloc((size_t)(period * state->channels), sizeof(float));
    int status = 0;
    j->client = api->client_open(client_name, NO_START_SERVER, &status);
    if (j->captured == NULL || j->played == NULL || j->client == NULL) {
        snprintf(error, (size_t)error_size, "no JACK server is running (jack_client_open status 0x%x)", status);
        rl_jack_close(j);
        return NULL;
    }
    if (api->get_buffer_size(j->client) != (uint32_t)period || api->get_sample_rate(j->client) != (uint32_t)sample_rate) {
        snprintf(error, (size_t)error_size, "the JACK server runs %u frames per period at %u Hz, not %lld at %lld",
                 api->get_buffer_size(j->client), api->get_sample_rate(j->client), (long long)period,
                 (long long)sample_rate);
        rl_jack_close(j);
        return NULL;
    }
    char name[32];
    for (int64_t c = 0; c < j->channels; c++) {
        snprintf(name, sizeof name, "in_%lld", (long long)(c + 1));
        j->inputs[c] = api->port_register(j->client, name, AUDIO_TYPE, PORT_IS_INPUT, 0);
        snprintf(name, sizeof name, "out_%lld", (long long)(c + 1));
        j->outputs[c] = api->port_register(j->client, name, AUDIO_TYPE, PORT_IS_OUTPUT, 0);
        if (j->inputs[c] == NULL || j->outputs[c] == NULL) {
            snprintf(error, (size_t)error_size, "JACK refused to register port %s", name);
            rl_jack_close(j);
            return NULL;
        }
    }
    api->set_process_callback(j->client, process, j);
    api->set_xrun_callback(j->client, xrun_callback, j);
    api->on_shutdown(j->client, shutdown_callback, j);
    atomic_store(&j->running, 1);
    if (api->activate(j->client) != 0) {
        snprintf(error, (size_t)error_size, "JACK refused to activate the client");
        atomic_store(&j->running, 0);
        rl_jack_close(j);
        return NULL;
    }
    if (connect_ports(j, device, 1, error, error_size) != 0 || connect_ports(j, device, 0, error, error_size) != 0) {
        rl_jack_close(j);
        return NULL;
    }
    return j;
}

int rl_jack_connect_midi(struct rl_jack *j, const char *source, char *error, int64_t error_size) {
    jack_port_t *port = atomic_load(&j->midi_in);
    if (port == NULL) {
        port = j->api->port_register(j->client, "midi_in", MIDI_TYPE, PORT_IS_INPUT, 0);
        if (port == NULL) {
            snprintf(error, (size_t)error_size, "JACK refused to register port midi_in");
            return -1;
        }
        atomic_store(&j->midi_in, port);
    }
    int result = j->api->connect(j->client, source, j->api->port_name(port));
    if (result != 0 && result != 17 /* EEXIST */) {
        snprintf(error, (size_t)error_size, "JACK refused to connect %s to %s", source, j->api->port_name(port));
        return -1;
    }
    return 0;
}

int64_t rl_jack_running(struct rl_jack *j) {
    return atomic_load(&j->running);
}
