import pytest
import torch

from ravelive.engine.bench import benchmark, default_blocks, parse_blocks
from ravelive.errors import ConfigError
from ravelive.models.nn_model import NNModel


def test_default_sizes_double_from_the_engines_default_block(codec_model_path):
    assert default_blocks(NNModel.load(codec_model_path)) == [256, 512, 1024, 2048]


def test_each_size_gets_a_positive_realtime_factor_and_threads_are_restored(codec_model_path):
    threads = torch.get_num_threads()
    results = benchmark(NNModel.load(codec_model_path), blocks=[64, 256], seconds=0.05, threads=1)
    assert [result.block for result in results] == [64, 256]
    for result in results:
        assert result.blocks == round(0.05 * 48000 / result.block)
        assert 0 < result.realtime_factor <= result.worst_block
    assert torch.get_num_threads() == threads


def test_illegal_block_is_refused_before_timing(codec_model_path):
    with pytest.raises(ConfigError, match="block 100 is not a legal model block"):
        benchmark(NNModel.load(codec_model_path), blocks=[100], seconds=0.05)


def test_block_list_syntax(codec_model_path):
    assert parse_blocks("64,128") == [64, 128]
    with pytest.raises(ConfigError, match="--blocks '64;128' is not a comma-separated list"):
        parse_blocks("64;128")
