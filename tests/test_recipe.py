import json
from pathlib import Path

import pytest

from edgessl.recipe import RecipeError, load_recipe, recipe_changes, recipe_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_recipes_load():
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        recipe = load_recipe(path)
        assert recipe.name == path.stem


def test_dotted_overrides_are_typed():
    r = load_recipe(ROOT / "recipes" / "smoke.yaml", ["optim.lr=1e-3", "corruption.normalize_before_roll=false", "scheduler.mask_bounds=[0.1, 0.5]"])
    assert r.optim.lr == 1e-3 and r.corruption.normalize_before_roll is False and r.scheduler.mask_bounds == (0.1, 0.5)


def test_unknown_keys_and_bad_values_are_named():
    with pytest.raises(RecipeError, match="optim.lrr.*known keys"):
        load_recipe(None, ["optim.lrr=1"])
    with pytest.raises(RecipeError, match="optim.epochs"):
        load_recipe(None, ["optim.epochs=many"])
    with pytest.raises(RecipeError, match="not found"):
        load_recipe("recipes/nope.yaml")


def test_a_stored_recipe_reloads_with_defaults_for_keys_added_since():
    stored = load_recipe(ROOT / "recipes" / "cifar10.yaml").to_dict()
    del stored["optim"]["encoder_ema"]  # as written before the key existed
    assert recipe_from_dict(stored) == load_recipe(ROOT / "recipes" / "cifar10.yaml", ["optim.encoder_ema=0"])
    with pytest.raises(RecipeError, match="optim.no_such_key"):
        recipe_from_dict(stored | {"optim": stored["optim"] | {"no_such_key": 1}})


def test_probe_stages_read_as_a_list_or_comma_separated():
    for text in ("stage3,stage4", "[stage3, stage4]"):
        assert load_recipe(None, [f"probe.stages={text}"]).probe.stages == ("stage3", "stage4")
    assert load_recipe(None, []).probe.stages == ("stage4",)


def test_recipe_changes_names_the_dotted_keys_that_differ():
    stored = load_recipe(ROOT / "recipes" / "tinyimagenet.yaml").to_dict()
    longer = load_recipe(ROOT / "recipes" / "tinyimagenet.yaml", ["optim.epochs=64", "optim.schedule_epochs=64"]).to_dict()
    assert recipe_changes(stored, longer) == {"optim.epochs": [14, 64], "optim.schedule_epochs": [24.0, 64.0]}
    as_json = json.loads(json.dumps(stored))  # lists where the Recipe has tuples (scheduler.mask_bounds)
    del as_json["optim"]["encoder_ema"]  # as written before the key existed: its default is no change
    assert recipe_changes(as_json, stored) == {}


def test_probe_weight_decays_read_as_floats_and_default_to_empty():
    for text in ("0.0005,0.2,1", "[5e-4, 0.2, 1]"):
        assert load_recipe(None, [f"probe.weight_decays={text}"]).probe.weight_decays == (5e-4, 0.2, 1.0)
    assert load_recipe(None, []).probe.weight_decays == ()


def test_probe_augment_copies_default_to_none():
    assert load_recipe(None, []).probe.augment_copies == 0
    assert load_recipe(None, ["probe.augment_copies=3"]).probe.augment_copies == 3
