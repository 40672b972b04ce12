"""The default rotation: pin only where taking over stream attachment harms nobody."""

from __future__ import annotations

import pytest

from yt_study_buddy.tor._rotation import AUTO, ROTATIONS, STRATEGIES, choose_strategy


def test_auto_pins_on_a_tor_of_our_own_and_isolates_on_a_shared_one():
    assert choose_strategy(AUTO, tor_is_ours=True) == "pin"
    assert choose_strategy(AUTO, tor_is_ours=False) == "isolate"


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("ours", [True, False])
def test_a_named_strategy_is_used_whatever_the_tor(name, ours):
    assert choose_strategy(name, tor_is_ours=ours) == name


def test_an_unknown_rotation_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown rotation 'random'; choose one of auto, isolate, newnym, pin"):
        choose_strategy("random", tor_is_ours=False)
    assert ROTATIONS[0] == AUTO
