"""Settings (kb/core/settings.py): flat names in ipkb.toml and IPKB_*, grouped in code, checked when read:
a bad value stops start-up with the setting's name and what it may be."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Literal

import pytest
from tests_support import REPO

from ingest.loaders import Limits
from kb.core.errors import SettingsError
from kb.core.settings import FIELD_GROUPS, GROUPS, Settings, load_settings, settings_from_values, settings_values

NO_FILE = Path("/nonexistent/ipkb.toml")

CHOICES = {  # every Literal setting: a bad value, and the allowed values the message must list
    "embedder": ("word2vec", "e5, sentence-transformers, openai"),
    "retrieval_mode": ("bogus", "hybrid, rrf, dense, bm25"),
    "store": ("faiss", "local, milvus"),
    "milvus_bm25": ("bm42", "ipkb, builtin"),
    "llm_structured": ("yes", "auto, json_schema, off"),
    "ranker": ("lightgbm", "rrf, learned"),
    "decision": ("classifier", "rules, learned"),
}
BAD = [  # (setting, value as written in the environment, what the message must say the setting may be)
    *[(name, bad, f"one of {allowed}") for name, (bad, allowed) in CHOICES.items()],
    ("top_k", "-1", "a whole number ≥ 1"),  # negative where positive is required
    ("max_pages", "0", "a whole number ≥ 1"),
    ("llm_timeout", "-5", "a number > 0"),
    ("max_file_mb", "0", "a number > 0"),
    ("workers", "17", "a whole number from 1 to 16"),
    ("search_min_score_ratio", "1.5", "a number from 0 to 1"),
    ("port", "http", "a whole number from 0 to 65535"),  # wrong type
    ("embed_batch", "2.5", "a whole number ≥ 1"),
    ("ocr", "maybe", "true or false"),
    ("max_file_seconds", "soon", "a number > 0"),
]


def _group(name: str):
    return getattr(Settings(), FIELD_GROUPS[name])


@pytest.mark.parametrize("name, value, allowed", BAD)
def test_a_bad_value_names_the_setting_and_what_it_may_be(name, value, allowed, tmp_path):
    with pytest.raises(SettingsError) as from_env:
        load_settings(env={f"IPKB_{name.upper()}": value}, config_file=NO_FILE)
    message = str(from_env.value)
    assert f"setting {name} = {value!r}" in message and f"IPKB_{name.upper()}" in message
    assert f"expected {allowed}" in message
    config = tmp_path / "ipkb.toml"
    config.write_text(f"{name} = {value!r}\n", encoding="utf-8")  # the file: named as its source
    with pytest.raises(SettingsError, match=f"setting {name} .*{config}.*expected"):
        load_settings(env={}, config_file=config)
    with pytest.raises(SettingsError, match=f"setting {name} .*expected"):  # derived settings are checked too
        Settings().replace(**{name: value})


def test_every_choice_is_a_literal_in_the_table():
    literal = {name for name, group in FIELD_GROUPS.items()
               if typing.get_origin(GROUPS[group].model_fields[name].annotation) is Literal}
    assert literal == set(CHOICES)
    for name, (_, allowed) in CHOICES.items():
        values = typing.get_args(GROUPS[FIELD_GROUPS[name]].model_fields[name].annotation)
        assert ", ".join(values) == allowed and getattr(_group(name), name) in values  # the default is allowed


def test_every_bad_value_is_reported_at_once():
    env = {"IPKB_RETRIEVAL_MODE": "bogus", "IPKB_TOP_K": "many", "IPKB_HOST": "0.0.0.0"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env, config_file=NO_FILE)
    assert "retrieval_mode" in str(caught.value) and "top_k" in str(caught.value) and "host" not in str(caught.value)


def test_defaults_then_file_then_environment(tmp_path):
    config = tmp_path / "ipkb.toml"
    config.write_text('top_k = 3\nretrieval_mode = "dense"\nkb_dir = "/srv/kb"\ncorpus = ["a", "b"]\n', encoding="utf-8")
    settings = load_settings(env={"IPKB_CONFIG": str(config), "IPKB_TOP_K": "4", "IPKB_OCR": "off"})
    assert settings.answer.top_k == 4  # the environment over the file
    assert settings.answer.retrieval_mode == "dense" and settings.store.kb_dir == Path("/srv/kb")  # the file
    assert settings.ingest.corpus == [Path("a"), Path("b")] and settings.ingest.ocr is False
    assert settings.answer.rrf_k == Settings().answer.rrf_k == 60  # the default
    env = load_settings(env={"IPKB_CORPUS": os.pathsep.join(["x", "y"]), "IPKB_EMBED_CACHE": ""}, config_file=NO_FILE)
    assert env.ingest.corpus == [Path("x"), Path("y")] and env.models.embed_cache is None


def test_an_unknown_name_in_the_file_is_an_error_naming_it(tmp_path):
    config = tmp_path / "ipkb.toml"
    config.write_text('kb_dri = "x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"unknown setting kb_dri \(did you mean kb_dir\?\)"):
        load_settings(env={}, config_file=config)
    config.write_text('[store]\nkb_dir = "x"\n', encoding="utf-8")  # the names are flat: no tables
    with pytest.raises(SettingsError, match="unknown setting store"):
        load_settings(env={}, config_file=config)
    with pytest.raises(SettingsError, match="unknown setting kb_dri"):
        Settings().replace(kb_dri="x")


def test_each_flat_name_is_one_attribute_of_its_group_and_one_environment_variable(tmp_path):
    assert set(FIELD_GROUPS.values()) == {"web", "ingest", "store", "models", "llm", "answer"}
    custom = Settings().replace(kb_dir=tmp_path, corpus=[tmp_path / "c"], embed_cache=tmp_path / "e.sqlite", workers=3,
                                top_k=7, store="milvus", milvus_uri="http://milvus:19530", llm_structured="off", ocr=False, llm_temperature=0.5)
    plain = settings_values(custom)
    assert set(plain) == set(FIELD_GROUPS)
    env = {f"IPKB_{name.upper()}": os.pathsep.join(v) if isinstance(v, list) else str(v) for name, v in plain.items()}
    assert load_settings(env=env, config_file=NO_FILE) == custom == settings_from_values(plain)
    for name, group in FIELD_GROUPS.items():
        assert getattr(getattr(custom, group), name) == custom.flat()[name]


def test_settings_are_frozen_and_replace_leaves_the_original():
    settings = Settings()
    changed = settings.replace(kb_dir=Path("/srv/kb"), retrieval_mode="bm25")
    assert settings.store.kb_dir == Path(".kb") and changed.store.kb_dir == Path("/srv/kb")
    assert changed.answer.retrieval_mode == "bm25" and changed.embed_cache_path == Path("/srv/kb/embed-cache.sqlite")
    with pytest.raises(ValueError):
        settings.store.kb_dir = Path("/elsewhere")  # type: ignore[misc]


def test_settings_built_in_code_do_not_read_the_environment(monkeypatch):
    monkeypatch.setenv("IPKB_TOP_K", "99")
    assert Settings().answer.top_k == 10 and load_settings(config_file=NO_FILE).answer.top_k == 99


def test_limits_take_their_defaults_and_values_from_the_ingest_settings():
    ingest = Settings().ingest
    assert Limits() == Limits.from_settings(ingest)
    assert Limits().max_pages == ingest.max_pages and Limits().max_file_seconds == ingest.max_file_seconds
    small = Settings().replace(max_pages=3, max_docx_unpacked_mb=0.5).ingest
    assert (Limits.from_settings(small).max_pages, Limits.from_settings(small).max_docx_unpacked_mb) == (3, 0.5)


def test_the_app_stops_at_start_on_a_bad_setting():
    started = time.monotonic()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IPKB_")}, "IPKB_RETRIEVAL_MODE": "bogus"}
    out = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "retrieval_mode" in out.stderr and "hybrid, rrf, dense, bm25" in out.stderr
    assert time.monotonic() - started < 30  # before any model is loaded


@pytest.mark.parametrize("uri, refused", [("", True), ("/srv/ipkb/milvus.db", True), ("http://milvus:19530", False)])
def test_several_workers_on_a_milvus_lite_file_are_refused_with_the_ways_out(uri, refused):
    env = {"IPKB_WORKERS": "2", "IPKB_STORE": "milvus", "IPKB_MILVUS_URI": uri}
    if not refused:
        assert load_settings(env=env, config_file=NO_FILE).web.workers == 2
        return
    with pytest.raises(SettingsError) as error:
        load_settings(env=env, config_file=NO_FILE)
    assert "milvus-lite serves one process" in str(error.value)
    assert "workers = 1" in str(error.value) and "milvus_uri" in str(error.value)
    assert Settings().replace(store="milvus").web.workers == 1  # one process on milvus-lite is fine


def test_the_app_refuses_workers_on_milvus_lite_at_start(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IPKB_")}, "IPKB_STORE": "milvus"}
    out = subprocess.run([sys.executable, "app.py", "--workers", "2", "--kb", str(tmp_path / "kb")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "milvus-lite serves one process" in out.stderr
