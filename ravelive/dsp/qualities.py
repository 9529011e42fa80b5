"""The resample quality names, apart from the resamplers so that the CLI can list them without numpy or soxr."""

LIVE_QUALITY = "live"  # serve's default: dsp.polyphase, ~30 frames held back per direction at 44.1<->48 kHz
QUALITY = "HQ"  # process's default, soxr's high quality: 0.91 passband, >100 dB stopband, ~1000 frames held back
SOXR_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")  # soxr's recipes, quick to very high
QUALITIES = (LIVE_QUALITY, *SOXR_QUALITIES)
