"""Config-string arguments: every key declared with a default, typos and bad values refused."""

import pytest

from experiments.configs import adding, arguments, copy, ett, forecast_csv


def test_values_take_the_type_of_their_default():
    got = arguments.parse("a=3, b=0.5 ,c=x", {"a": 1, "b": 1.0, "c": "y", "d": 7})
    assert got == {"a": 3, "b": 0.5, "c": "x", "d": 7}
    assert arguments.parse(None, {"a": 1}) == {"a": 1}
    flags = {"on": True, "off": False}
    assert arguments.parse("on=False,off=true", flags) == {"on": False, "off": True}
    assert arguments.parse("on=0,off=1", flags) == {"on": False, "off": True}
    with pytest.raises(ValueError, match="on='no' must be True or False"):
        arguments.parse("on=no", flags)


@pytest.mark.parametrize(
    "arg, message",
    [
        ("lenght=50", "unknown config argument 'lenght=50'; valid .*length"),
        ("length", "unknown config argument 'length'"),
        ("length=abc", "config argument length='abc' must be an int"),
        ("learning_rate=fast", "learning_rate='fast' must be a number"),
    ],
)
def test_typos_and_bad_values_are_refused(arg, message):
    with pytest.raises(ValueError, match=message):
        adding.get_config(arg)


def test_every_config_string_reaches_the_config():
    assert ett.get_config("horizon=48,cell=gru,input_len=24").data.horizon == 48
    assert copy.get_config("length=30").model.hidden_size == 64  # copy's own default
    assert copy.get_config("length=30,hidden_size=8").model.hidden_size == 8
    config = forecast_csv.get_config("target=load,hidden_size=16,input_len=12")
    assert (config.data.target, config.model.hidden_size, config.data.input_len) == ("load", 16, 12)
    with pytest.raises(ValueError, match="unknown config argument 'taget=load'"):
        forecast_csv.get_config("taget=load")
