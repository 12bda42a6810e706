"""Task configs as dataclasses: one `--flag` per field, stored in the run folder.

Light on purpose (standard library only): every task's CLI module builds its parser from its
config dataclass without importing TensorFlow, so `zoo --help` answers at once.

Field metadata:
    help: the flag's help text.
    choices: the allowed values.
    extends: True for a flag that only extends a run (total steps, epochs or episodes); on resume
        it may be raised, never lowered. Every other flag must match the saved config.
    cli: False hides a field from the command line (it keeps its default).

Flags have no argparse defaults: a flag the user did not pass is absent from the parsed
namespace, so a resume can tell "not given" from "given the default value".

Example:

>>> import argparse, dataclasses
>>> @dataclasses.dataclass
... class Config:
...     epochs: int = dataclasses.field(default=3, metadata={"help": "epochs", "extends": True})
...     learning_rate: float = 0.1
...     schedules: tuple = ("lrd", "ibs")
>>> parser = add_config_arguments(argparse.ArgumentParser(), Config)
>>> args = parser.parse_args(["--learning-rate", "0.5", "--schedules", "lrd,hybrid"])
>>> given_flags(args, Config)
{'learning_rate': 0.5, 'schedules': ('lrd', 'hybrid')}
>>> config_from_args(Config, args)
Config(epochs=3, learning_rate=0.5, schedules=('lrd', 'hybrid'))
"""

import argparse
import dataclasses
import typing
from typing import Any

from zoo.errors import UsageError


def _field_kind(config_class: type, field: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(config_class)
    kind = hints.get(field.name, field.type)
    origin = typing.get_origin(kind)
    if origin is typing.Union:  # Optional[X]
        arguments = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        kind = arguments[0] if len(arguments) == 1 else str
        origin = typing.get_origin(kind)
    if origin in (tuple, list) or kind in (tuple, list):
        items = [arg for arg in typing.get_args(kind) if arg is not Ellipsis]
        return (tuple, items[0] if items else str)
    return kind


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _list_parser(item_kind: type, flag: str):
    def parse(text: str) -> tuple:
        items = [item.strip() for item in text.split(",") if item.strip()]
        try:
            return tuple(item_kind(item) for item in items)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {item_kind.__name__}, got {text!r}"
            ) from None

    parse.__name__ = f"list of {item_kind.__name__}"
    return parse


def cli_fields(config_class: type) -> list:
    """The dataclass fields that are command-line flags."""
    return [field for field in dataclasses.fields(config_class) if field.metadata.get("cli", True)]


def add_config_arguments(parser: argparse.ArgumentParser, config_class: type):
    """Adds one `--flag` per CLI field of `config_class`; returns the parser."""
    for field in cli_fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        default = _default(field)
        kind = _field_kind(config_class, field)
        kwargs: dict = {"dest": field.name, "default": argparse.SUPPRESS}
        shown = default
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(kind, tuple):
            kwargs["type"] = _list_parser(kind[1], flag)
            kwargs["metavar"] = "A,B,..."
            shown = ",".join(str(item) for item in default) if default else "none"
        else:
            kwargs["type"] = kind if kind in (int, float, str) else str
            if "choices" in field.metadata:
                kwargs["choices"] = field.metadata["choices"]
        help_text = field.metadata.get("help", "")
        if field.metadata.get("extends"):
            help_text += "; may be raised when resuming"
        kwargs["help"] = f"{help_text} (default: {shown})".strip()
        parser.add_argument(flag, **kwargs)
    return parser


def given_flags(args: argparse.Namespace, config_class: type) -> dict:
    """The config fields the user passed on the command line, with their parsed values."""
    names = {field.name for field in cli_fields(config_class)}
    return {key: value for key, value in vars(args).items() if key in names}


def config_from_args(config_class: type, args: argparse.Namespace):
    """The config built from the dataclass defaults and the flags given (`__post_init__`
    validates)."""
    return config_class(**given_flags(args, config_class))


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(config).items()
    }


def config_from_dict(config_class: type, data: dict):
    """The config dataclass from a stored dict; lists become tuples where the field is a tuple.

    Raises `UsageError` naming unknown keys (a config written by another version or task)."""
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UsageError(f"the saved config has fields this version does not know: {unknown}.")
    values = {}
    for key, value in data.items():
        kind = _field_kind(config_class, fields[key])
        values[key] = tuple(value) if isinstance(kind, tuple) and value is not None else value
    return config_class(**values)


def extends(field_name: str, config_class: type) -> bool:
    """Whether `field_name` is a flag that only extends a run."""
    for field in dataclasses.fields(config_class):
        if field.name == field_name:
            return bool(field.metadata.get("extends"))
    return False
