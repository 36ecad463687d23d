"""The demo's settings and its honest summary of where the synthetic model loses."""

from __future__ import annotations

import pytest

from synthembed.errors import ConfigError
from synthembed.recsys.demo import DemoConfig, format_table, standing


def _r(cold: float, warm: float, overall: float) -> dict[str, dict[str, float | int]]:
    return {
        "cold": {"recall": cold, "ndcg": 0.0, "auc": 0.5},
        "warm": {"recall": warm, "ndcg": 0.0, "auc": float("nan")},
        "overall": {"recall": overall, "ndcg": 0.0, "auc": float("nan")},
    }


def test_standing_names_every_trained_peer_and_skips_the_floors() -> None:
    models = {
        "random": _r(0.05, 0.0, 0.0),
        "popularity": _r(0.05, 0.9, 0.9),
        "plain BPR": _r(0.04, 0.19, 0.09),
        "LightFM": _r(0.17, 0.22, 0.1),
        "synthetic (autoencoder)": _r(0.21, 0.2, 0.1),
    }
    lines = standing(models, "synthetic (autoencoder)")
    assert lines == [
        "synthetic (autoencoder) vs plain BPR: wins on cold (0.2100 vs 0.0400); wins on warm "
        "(0.2000 vs 0.1900); wins on overall (0.1000 vs 0.0900) Recall@20.",
        "synthetic (autoencoder) vs LightFM: wins on cold (0.2100 vs 0.1700); loses on warm "
        "(0.2000 vs 0.2200); ties on overall (0.1000 vs 0.1000) Recall@20.",
    ]
    assert "| LightFM | 0.1700 |" in format_table(models)


def test_demo_config_recipe_defaults_and_checks() -> None:
    cfg = DemoConfig()
    assert (cfg.loss, cfg.negatives, cfg.item_bias, cfg.peers) == ("softmax", 5, True, True)
    assert cfg.num_lightfm_epochs == 30 and DemoConfig(quick=True).num_lightfm_epochs == 8
    assert DemoConfig(lightfm_epochs=3).num_lightfm_epochs == 3
    with pytest.raises(ConfigError, match=r"'loss' parameter of DemoConfig.*Got 'hinge'"):
        DemoConfig(loss="hinge")
    with pytest.raises(ConfigError, match=r"'negatives' parameter of DemoConfig.*Got 0"):
        DemoConfig(negatives=0)
    with pytest.raises(ConfigError, match=r"'lightfm_epochs' parameter of DemoConfig.*Got 0"):
        DemoConfig(lightfm_epochs=0)
