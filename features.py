"""The `--features` registry: names -> frozen pre-trained feature networks (paper Section 3.1).

    vgg        VGGish, general, trained on YouTube-100M (vggish.py; official weights, downloaded once)
    aisfx      the offline general network: a sound-effects CNN whose weights ship in a PyPI wheel (standins/sfxnet.py)
    scnn_mtat  short-chunk CNN tagger trained on MagnaTagATune (scnn.py; train it with train_scnn.py --mtat)
    mtt_vgg    the offline stand-in for scnn_mtat: musicnn's VGG tagger, also MagnaTagATune (ROC-AUC 0.903 vs
               0.909) but another architecture; weights in the musicnn wheel (standins/musicnn_features.py)
    scnn_loop  short-chunk CNN loop-genre classifier trained on the loop data set (scnn.py; train_scnn.py)

A lookup only LOADS: a network whose weights are missing raises FeatureNetUnavailable with the remedy.
Training a classifier is an explicit, announced step (train_scnn.ensure_loop_classifier, which train.py
calls before building).  The interface itself (FeatureNet, FeatureContext) is featurenet.py.
"""
from __future__ import annotations

from standins import musicnn_features
import scnn
from standins import sfxnet
import vggish
from featurenet import FeatureContext, FeatureNet, use_batch_stats

REGISTRY = {
    "vgg": vggish.build_feature_net,
    "aisfx": sfxnet.build_feature_net,
    "scnn_mtat": lambda ctx: scnn.build_feature_net("mtat", ctx),
    "scnn_loop": lambda ctx: scnn.build_feature_net("loop", ctx),
    "mtt_vgg": musicnn_features.build_feature_net,
}
GENERAL = ("vgg", "aisfx")     # general (non-music-specific) networks; the rest are domain-specific
DESCRIPTIONS = {
    "vgg": "VGGish, general (YouTube-100M); official weights downloaded once",
    "aisfx": "aisfx, general sound-effects CNN; offline stand-in for VGGish (weights in its wheel)",
    "scnn_mtat": "short-chunk CNN tagger, MagnaTagATune (train_scnn.py --mtat ROOT)",
    "scnn_loop": "short-chunk CNN loop-genre classifier, trained on the data set's genres",
    "mtt_vgg": "musicnn's VGG tagger, MagnaTagATune; offline stand-in for scnn_mtat (weights in its wheel)",
}


def parse_feature_names(spec: str) -> list[str]:
    """'vgg,scnn_loop' -> ['vgg', 'scnn_loop']; 'none' -> [] (the plain StyleGAN2 baseline)."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise ValueError(f"unknown feature network(s) {unknown or spec!r}; "
                         f"choose a comma list of {sorted(REGISTRY)} or 'none'")
    if len(set(names)) != len(names):
        raise ValueError(f"feature network listed twice: {spec!r}")
    return names


def build(name: str, ctx: FeatureContext) -> FeatureNet:
    """Build a frozen feature network by its registry name, on ctx.device."""
    if name not in REGISTRY:
        raise ValueError(f"unknown feature network {name!r}; choose one of {sorted(REGISTRY)}")
    net = REGISTRY[name](ctx).to(ctx.device).freeze()
    return use_batch_stats(net) if ctx.batch_stats else net
