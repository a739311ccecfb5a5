"""Config: defaults, overrides, env expansion, and one-line errors naming file and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from seglake.config import load_config, parse_as_of
from seglake.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    return path


def test_embedded_default_loads_with_documented_values() -> None:
    config = load_config()
    assert config.lake.root == "./lake"
    assert config.features.window_days == 365
    assert config.rfm.tiles == 4
    assert config.rfm.relative_error == 0.001
    assert config.source == "conf/local.yaml"


def test_set_overrides_are_typed_from_yaml_scalars() -> None:
    config = load_config(None, ["rfm.tiles=5", "generate.start_date=2021-03-01", "spark.conf.spark.x.y=7"])
    assert config.rfm.tiles == 5
    assert config.generate.start_date == dt.date(2021, 3, 1)
    assert config.spark.conf["spark.x.y"] == "7"
    assert "spark" not in config.spark.conf  # no stray nested section from the dotted key


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "rfm:\n  tilez: 4\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: rfm.tilez: unknown key"


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "features:\n  window_days: a year\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: features.window_days: ")
    assert "integer" in message and "'a year'" in message
    assert "\n" not in message


def test_out_of_range_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^--set rfm.tiles: .*greater than or equal to 2"):
        load_config(None, ["rfm.tiles=1"])


def test_unknown_key_from_set_names_the_flag() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, ["generate.custmers=10"])
    assert str(error.value) == "--set generate.custmers: unknown key"


def test_bad_date_in_config_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "generate:\n  start_date: 2022-02-30\n")
    with pytest.raises(ConfigError, match=r"generate.start_date: .*date"):
        load_config(path)


def test_env_variables_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGLAKE_TEST_BUCKET", "s3a://bucket-7")
    path = write(tmp_path, "lake:\n  root: ${SEGLAKE_TEST_BUCKET}/lake\n")
    assert load_config(path).lake.root == "s3a://bucket-7/lake"


def test_missing_env_variable_names_key_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGLAKE_NOT_SET", raising=False)
    path = write(tmp_path, "lake:\n  root: ${SEGLAKE_NOT_SET}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: lake.root: environment variable SEGLAKE_NOT_SET is not set"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "lake:\n  root: ./lake\n rfm: [\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_booleans_are_accepted_for_console_progress() -> None:
    assert load_config(None, ["spark.console_progress=off"]).spark.console_progress == "off"


def test_as_of_parses_iso_dates_and_rejects_others() -> None:
    assert parse_as_of("2024-02-29") == dt.date(2024, 2, 29)
    assert parse_as_of(None) is None
    with pytest.raises(ConfigError, match=r"^--as-of 2023-02-29: not a date, expected YYYY-MM-DD$"):
        parse_as_of("2023-02-29")


def test_digest_changes_with_config() -> None:
    assert load_config().digest() == load_config().digest()
    assert load_config().digest() != load_config(None, ["rfm.tiles=5"]).digest()


def test_dirty_rate_scales_the_defect_mix_and_dirty_false_disables_it() -> None:
    scaled = load_config(None, ["generate.dirty_rate=0.1"]).generate.effective_defect_rates()
    default = load_config().generate.effective_defect_rates()
    assert abs(sum(scaled.values()) - 0.1) < 1e-12
    assert (
        abs(scaled["null_customer"] / scaled["zero_amount"] - default["null_customer"] / default["zero_amount"]) < 1e-12
    )
    assert load_config(None, ["generate.dirty=false"]).generate.effective_defect_rates() == {}


def test_delta_package_for_another_spark_line_is_refused_in_one_line() -> None:
    import pyspark

    from seglake.config import DELTA_PACKAGE
    from seglake.session import check_delta_package

    check_delta_package(DELTA_PACKAGE, pyspark.__version__)  # the pinned pair agrees
    check_delta_package("io.delta:delta-core_2.12:2.4.0", "3.4.1")  # no Spark line in the name: not judged
    with pytest.raises(ConfigError) as err:
        check_delta_package("io.delta:delta-spark_4.2_2.13:4.4.0", "4.1.1")
    message = str(err.value)
    assert "\n" not in message
    assert "spark.delta_package io.delta:delta-spark_4.2_2.13:4.4.0 is built for Spark 4.2" in message
    assert "this Spark is 4.1.1: use io.delta:delta-spark_4.1_2.13:<version>" in message


def test_resolving_a_delta_package_for_another_spark_line_fetches_nothing(tmp_path, monkeypatch, capsys) -> None:
    import pyspark

    from seglake import session

    monkeypatch.setenv("SEGLAKE_JARS_DIR", str(tmp_path))
    package = "io.delta:delta-spark_3.9_2.13:4.4.0"  # a Spark line that does not exist
    assert session.main(["--resolve", "--package", package]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        f"python -m seglake.session: error: spark.delta_package {package} is built for Spark 3.9, "
        f"but this Spark is {pyspark.__version__}: "
    )
    assert list(tmp_path.iterdir()) == []  # no jar folder, no resolver cache


def test_the_renamed_report_dir_is_one_line_naming_its_new_key() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, ["report.dir=./reports"])
    assert "report.dir was renamed report.root" in str(raised.value)
    assert load_config(None, ["report.root=s3a://bucket/reports"]).report.root == "s3a://bucket/reports"
