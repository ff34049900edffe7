"""Taxonomies: built-ins of the papers, forgiving names, YAML rename/merge/drop, errors, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicperf.errors import AnnotationError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.labels import GESTURES18, SUPERCLASSES7, Taxonomy

DATA = Path(__file__).resolve().parent.parent / "src" / "musicperf" / "data" / "taxonomies"


def sets_with(*tiers):
    aset = AnnotationSet(source=Path("x.eaf"))
    for name in tiers:
        aset.add_tier(Tier(name, [Annotation(0.0, 1.0, name.lower())]))
    return aset


def write(tmp_path, text, name="map.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_builtins_match_the_papers():
    g = Taxonomy.builtin("gestures18")
    assert g.classes == GESTURES18 and len(g) == 18 and g.background == "Normal play"
    s = Taxonomy.builtin("superclasses7")
    assert s.classes == SUPERCLASSES7 and len(s) == 7
    assert s.map_name("frowning") == "Facial expression"
    assert s.map_name("Upbeat_in_head_movement") == "Head related action"
    assert s.map_name("Repositioning guitar") == "Right hand action"
    assert s.map_name("vibrato") == "Left hand action"
    assert s.map_name("FREEZE") == "Relative stillness"
    assert s.map_name("Sympathetic body movement") == "Upper body movement"
    assert s.map_name("Physical energy") is None and s.map_name("Expressive preparation") is None
    # each of the 17 gestures is accounted for exactly once
    assert all(s.knows(c) for c in GESTURES18)


def test_forgiving_names_canonical_output():
    aset = sets_with("  NODDING", "Eyes_closed", "minimal   movement")
    iv = Taxonomy.builtin("gestures18").class_intervals(aset)
    assert iv["Nodding"].tolist() == [[0.0, 1.0]]
    assert iv["Eyes closed"].tolist() == [[0.0, 1.0]]
    assert iv["Minimal movement"].tolist() == [[0.0, 1.0]]
    assert "Normal play" not in iv and iv["Vibrato"].shape == (0, 2)


def test_from_annotations_by_tier_and_value():
    a, b = sets_with("Head", "hand"), sets_with("head ", "Feet")
    t = Taxonomy.from_annotations([a, b], background="Rest")
    assert t.classes == ("Head", "hand", "Feet", "Rest") and t.background == "Rest"
    v = Taxonomy.from_annotations(a, by="value")
    assert v.classes == ("head", "hand") and v.by == "value"


def test_yaml_rename_merge_drop(tmp_path):
    p = write(
        tmp_path,
        """
rename:
  Eyes closed: Eyes shut
merge:
  Head: [Nodding, lifting_head]
drop: [Physical energy]
""",
    )
    t = Taxonomy.from_yaml(p, base=Taxonomy.builtin("gestures18"))
    assert t.classes[:3] == ("Facial expression", "Head", "Right hand round")
    assert "Eyes shut" in t.classes and "Eyes closed" not in t.classes
    assert "Physical energy" not in t.classes and "Nodding" not in t.classes
    assert t.classes[-1] == "Normal play" == t.background and len(t) == 18 - 1 - 1
    iv = t.class_intervals(sets_with("Nodding", "Lifting head", "Eyes closed", "Physical energy"))
    assert iv["Head"].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert iv["Eyes shut"].tolist() == [[0.0, 1.0]]
    # survives the JSON a model file stores
    assert Taxonomy.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_yaml_unknown_name_is_a_one_line_error(tmp_path):
    p = write(tmp_path, "merge:\n  Head: [Nodding, Headbanging]\n", "bad_map.yaml")
    with pytest.raises(AnnotationError, match=r"unknown class 'Headbanging' under 'merge' in taxonomy mapping '.*bad_map\.yaml'") as e:
        Taxonomy.from_yaml(p, base=Taxonomy.builtin("gestures18"))
    assert "\n" not in str(e.value)


def test_yaml_unknown_tier_of_a_file_taxonomy(tmp_path):
    base = Taxonomy.from_annotations(sets_with("Head", "Hand"))
    p = write(tmp_path, "drop: [Foot]\n")
    with pytest.raises(AnnotationError, match=r"unknown class 'Foot'.*map\.yaml.*known classes: Head, Hand"):
        Taxonomy.from_yaml(p, base=base)


@pytest.mark.parametrize(
    "text, match",
    [
        ("rename: {Nodding: Nod}\ndrop: [nodding]\n", "appears under both 'rename' and 'drop'"),
        ("merge: {Normal play: [Vibrato]}\n", "mapped onto the background"),
        ("renam: {Nodding: Nod}\n", "unknown key 'renam'"),
        ("merge: {Head: Nodding}\n", "list of old names"),
        ("rename: [a, b\n", "not valid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
    ],
)
def test_yaml_malformed(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(AnnotationError, match=match):
        Taxonomy.from_yaml(p, base=Taxonomy.builtin("gestures18"))


def test_yaml_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read taxonomy mapping .*nope.yaml"):
        Taxonomy.from_yaml(tmp_path / "nope.yaml")


def test_yaml_background_rename_and_removal(tmp_path):
    g = Taxonomy.builtin("gestures18")
    t = Taxonomy.from_yaml(write(tmp_path, "background: Rest\n"), base=g)
    assert t.background == "Rest" and t.classes[-1] == "Rest" and len(t) == 18
    u = Taxonomy.from_yaml(write(tmp_path, "drop: [Normal play]\n", "b.yaml"), base=g)
    assert u.background is None and len(u) == 17


def test_yaml_without_base(tmp_path):
    p = write(
        tmp_path,
        "by: value\nclasses: [Vibrato]\nmerge: {Head: [Nod, Tilt]}\ndrop: [noise]\nbackground: Normal play\n",
    )
    t = Taxonomy.from_yaml(p)
    assert t.classes == ("Vibrato", "Head", "Normal play") and t.by == "value"
    assert t.map_name("tilt") == "Head" and t.map_name("Noise") is None


@pytest.mark.parametrize("base", [Taxonomy.builtin("gestures18"), None])
def test_shipped_superclass_mapping_equals_builtin(base):
    t = Taxonomy.from_yaml(DATA / "superclasses7.yaml", base=base)
    s = Taxonomy.builtin("superclasses7")
    assert t.classes == s.classes and t.background == s.background
    for g in GESTURES18:
        assert t.map_name(g) == s.map_name(g), g


def test_yaml_order(tmp_path):
    g = Taxonomy.builtin("gestures18")
    t = Taxonomy.from_yaml(write(tmp_path, "order: [Vibrato, normal play, Nodding]\n"), base=g)
    assert t.classes[:3] == ("Vibrato", "Nodding", "Facial expression") and t.classes[-1] == "Normal play"
    with pytest.raises(AnnotationError, match="unknown class 'Tuba' under 'order'"):
        Taxonomy.from_yaml(write(tmp_path, "order: [Tuba]\n", "o.yaml"), base=g)


def test_yaml_new_names_are_matched_forgivingly(tmp_path):
    g = Taxonomy.builtin("gestures18")
    # renaming onto an existing class (in other case) merges into it; two spellings of a new name are one class
    t = Taxonomy.from_yaml(write(tmp_path, "rename: {Nodding: vibrato}\nmerge: {Head: [Lifting head], HEAD: [Freeze]}\n"), base=g)
    assert "Vibrato" in t.classes and "vibrato" not in t.classes and t.map_name("Nodding") == "Vibrato"
    assert t.map_name("Freeze") == t.map_name("lifting head") == "Head" and "HEAD" not in t.classes


def test_yaml_without_base_unifies_spellings(tmp_path):
    t = Taxonomy.from_yaml(write(tmp_path, "classes: [head, Vibrato]\nmerge: {Head: [Nod]}\n"))
    assert t.classes == ("Head", "Vibrato") and t.map_name("nod") == "Head" and t.map_name("HEAD") == "Head"
