"""Configs: YAML recipes with dotted key=value overrides, validated; bad values are one clear error.

    .venv/bin/pytest tests/test_config.py
"""

import pytest

from hyperlora import HyperLoRAError, HyperNetConfig
from hyperlora.config import load_config
from hyperlora.train import TrainConfig


def test_recipe_with_overrides():
    c = load_config(TrainConfig, "hyperlora/configs/cpu.yaml",
                    ["hypernet.rank=16", "steps=10", "hypernet.layers=1,2", "lr=1e-3", "hypernet.alpha=32"])
    assert (c.hypernet.rank, c.steps, c.hypernet.layers, c.lr, c.hypernet.alpha) == (16, 10, (1, 2), 0.001, 32.0)
    assert c.manifestos_per_step == 4  # untouched keys keep the recipe's value


@pytest.mark.parametrize("override, match", [
    (["hypernet.bogus=1"], "unknown config key"), (["steps.x=1"], "unknown config key"),
    (["steps=abc"], "not a valid int"), (["hypernet.rank=12"], "rank must be one of"), (["steps"], "key=value"),
])
def test_bad_overrides(override, match):
    with pytest.raises(HyperLoRAError, match=match):
        load_config(TrainConfig, None, override)


def test_hypernet_config_round_trips_and_validates():
    c = HyperNetConfig(rank=16, layers=(3, 1))
    assert c.layers == (1, 3) and HyperNetConfig.from_dict(c.to_dict()) == c
    with pytest.raises(HyperLoRAError, match="multiple of n_heads"):
        HyperNetConfig(d_model=30, n_heads=4)
    with pytest.raises(HyperLoRAError, match="unknown"):
        HyperNetConfig.from_dict({"rank": 8, "nope": 1})
