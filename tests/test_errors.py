"""One mapping from any failure to a sentence, and errors as data across the service boundary."""

import errno

import pytest

from app.codec import errors
from app.codec.errors import CodecError, error_of_kind, user_message


def every_codec_error():
    found, todo = [], [CodecError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_codec_error_has_its_own_kind_and_comes_back_as_itself():
    classes = [c for c in every_codec_error() if c.__module__ == errors.__name__]
    kinds = [c.kind for c in classes]
    assert len(classes) >= 7 and len(set(kinds)) == len(kinds)
    for cls in classes:
        rebuilt = error_of_kind(cls.kind, "a sentence")
        assert type(rebuilt) is cls and str(rebuilt) == "a sentence"
    assert type(error_of_kind("from-a-newer-service", "x")) is CodecError


@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (errors.FormatError("damaged HyperThumbnail marker"), "damaged HyperThumbnail marker"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.jpg"), "No space left on device (/out/x.jpg)"),
        (MemoryError(), "out of memory: the encoder needs more than this machine has free"),
        (KeyError("k" * 500), "the encoder failed: KeyError: "),
    ],
)
def test_user_message_is_one_short_sentence(exc, sentence):
    text = user_message(exc, "the encoder")
    assert text.startswith(sentence)
    assert "\n" not in text and len(text) < 300
