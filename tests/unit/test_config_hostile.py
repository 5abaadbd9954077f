"""Hostile configuration input: bounded parsing, one clear error naming the file, key or line.

Each case is something a typo, a pasted file or a malicious override can produce. Before these
limits an alias bomb of a few hundred bytes exhausted memory in the key-path walk, a self-referencing
anchor and 3,000 nested brackets ended in RecursionError, and an impossible date named no key.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.config import ConfigError, load_config, parse_cli_overrides
from engine.config.yaml_io import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_VALUES, parse_yaml_text

# The classic "billion laughs": 9 levels of 9 aliases, 9**9 = 387 million strings from 342 bytes.
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]" for p, n in zip("abcdefgh", "bcdefghi")]
) + "\n"


def only_error(exc: ConfigError):
    assert len(exc.errors) == 1, exc.errors
    return exc.errors[0]


def test_alias_bomb_is_refused_quickly_without_building_it(tmp_path: Path):
    assert len(ALIAS_BOMB) < 400
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", override_file=path)
    assert time.perf_counter() - started < 1.0
    issue = only_error(info.value)
    assert issue.file == str(path)
    assert f"more than {MAX_VALUES:,} values" in issue.message and "alias bomb" in issue.message
    assert issue.line is not None and issue.line <= 9


def test_aliases_within_the_limit_still_work():
    doc = parse_yaml_text("base: &b {x: 1, y: 2}\ncopy: *b\nmerged: {<<: *b, y: 3}\n", "f.yaml")
    assert doc.data == {"base": {"x": 1, "y": 2}, "copy": {"x": 1, "y": 2}, "merged": {"x": 1, "y": 3}}


@pytest.mark.parametrize("text, line", [
    ("hedge: &h\n  inner: *h\n", 2),                     # a mapping holding its own alias
    ("risk:\n  - &l [1, *l]\n", 2),                       # a sequence holding its own alias
])
def test_self_referencing_anchor_is_named_with_its_line(text: str, line: int):
    with pytest.raises(ConfigError) as info:
        parse_yaml_text(text, "override.yaml")
    issue = only_error(info.value)
    assert "refers to its own anchor" in issue.message
    assert (issue.file, issue.line) == ("override.yaml", line)


def test_deep_nesting_is_refused_before_composing():
    with pytest.raises(ConfigError) as info:
        parse_yaml_text("hedge: " + "[" * 3000, "deep.yaml")
    assert f"deeper than {MAX_DEPTH} levels" in only_error(info.value).message


def test_nesting_through_aliases_counts_too():
    inner = "[" * 20 + "]" * 20
    text = f"a: &a {inner}\nb: [[[[[[[[[[[[[[*a]]]]]]]]]]]]]]\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml_text(text, "deep.yaml")
    assert "through aliases" in only_error(info.value).message


def test_oversized_file_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_DOCUMENT_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", override_file=path)
    issue = only_error(info.value)
    assert issue.file == str(path) and "at most 1,048,576 bytes" in issue.message


def test_a_folder_given_as_the_override_file_says_so(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", override_file=tmp_path)
    assert "is a folder" in only_error(info.value).message


def test_impossible_date_names_the_key_and_line(tmp_path: Path):
    path = tmp_path / "o.yaml"
    path.write_text("hedge:\n  margin_ratio_target: 2024-13-45\n")
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", override_file=path)
    issue = only_error(info.value)
    assert (issue.file, issue.key, issue.line) == (str(path), "hedge.margin_ratio_target", 2)
    assert "'2024-13-45' looks like a date but is not one" in issue.message


@pytest.mark.parametrize("pair, needle", [
    ("hedge.x=" + "[" * 3000, f"deeper than {MAX_DEPTH} levels"),
    ("hedge.x=2024-13-45", "looks like a date but is not one"),
    ("hedge.x=&a [*a]", "refers to its own anchor"),
    ("hedge.x={a: 1", "is not valid YAML"),
    (".".join(["a"] * 3000) + "=1", "key is too long"),
])
def test_hostile_set_values_blame_the_override(pair: str, needle: str):
    with pytest.raises(ConfigError) as info:
        parse_cli_overrides([pair])
    issue = only_error(info.value)
    assert issue.file == "<command line>" and issue.line is None
    assert needle in issue.message
    assert len(str(issue)) < 300          # a 3,000-character value is cut in the message, not echoed


def test_set_error_inside_a_section_blames_the_override_not_the_mode_file_line():
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", cli_overrides={"hedge.allocation.binance": 0.9})
    issue = only_error(info.value)
    assert issue.file == "<command line>" and issue.key == "hedge.allocation"
    assert "after --set hedge.allocation.binance" in issue.message
    assert "eth_basis.yaml line" in issue.message          # where the rest of the section comes from


def test_override_file_error_inside_a_section_names_the_override_line(tmp_path: Path):
    path = tmp_path / "o.yaml"
    path.write_text("hedge:\n  allocation:\n    okx: 0.7\n")
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", override_file=path)
    issue = only_error(info.value)
    assert (issue.file, issue.line) == (str(path), 3)
    assert "after hedge.allocation.okx at line 3" in issue.message


def test_describe_has_one_header_at_most():
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", cli_overrides={"hedge.margin_ratio_target": "abc"})
    text = info.value.describe()
    assert text.startswith("invalid configuration: <command line>: hedge.margin_ratio_target:")
    assert "\n" not in text and "1 configuration error" not in text
