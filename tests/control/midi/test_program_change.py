"""Program change N recalls preset N of the presets directory (the hook MidiService calls; ports in test_serve_midi)."""

from ravelive.control.midi.service import PROGRAM_SOURCE, preset_recall
from ravelive.control.params import ParameterSpec, ParameterStore, ParameterType
from ravelive.control.presets import PresetLibrary


def test_program_n_loads_the_nth_preset_in_name_order_as_the_midi_program_source(tmp_path):
    store = ParameterStore([ParameterSpec("mix", ParameterType.FLOAT, 1.0, "dry/wet", 0.0, 1.0)])
    library = PresetLibrary(tmp_path)
    for name, mix in (("01 drone", 0.2), ("00 intro", 0.1), ("02 noise", 0.3)):
        store.set("mix", mix)
        library.save(name, store, None)
    heard = []
    store.add_listener(heard.append)
    recall = preset_recall(tmp_path, store)
    recall(1)
    assert store.get("mix") == 0.2 and heard[-1].source == PROGRAM_SOURCE
    recall(0)
    assert store.get("mix") == 0.1
    assert preset_recall(None, store) is None  # no presets directory: program changes are not bound
