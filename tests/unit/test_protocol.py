"""The instruction codec: lengths in code points, any split of the bytes, guacd's limits."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guacbridge.protocol import (MAX_ELEMENTS, MAX_INSTRUCTION_LENGTH, Framer, Parser,
                                 ProtocolError, encode, is_internal, parse, split)

values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
instructions = st.lists(values, min_size=1, max_size=6)


def test_lengths_count_code_points_not_bytes_or_utf16_units():
    assert encode("size", 0, 1024) == "4.size,1.0,4.1024;"
    assert encode("name", "Zoë😀") == "4.name,4.Zoë😀;"
    assert encode("") == "0.;"


@settings(max_examples=200, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=10), st.data())
def test_any_split_of_the_bytes_gives_back_the_same_instructions(items, data):
    text = "".join(encode(*i) for i in items)
    raw = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    framer, parser = Framer(), Parser()
    out, parsed = [], []
    for start, end in zip([0] + cuts, cuts + [len(raw)]):
        out.append(framer.feed(raw[start:end]))
        parsed.extend(parser.feed(raw[start:end]))
    assert "".join(out) == text
    assert parsed == [[str(v) for v in i] for i in items]
    assert framer.pending == 0


def test_an_instruction_split_inside_a_utf8_character_is_reassembled():
    text = encode("clipboard", "€uro")
    raw = text.encode()
    cut = raw.index("€".encode()) + 1            # inside the three-byte euro sign
    framer = Framer()
    assert framer.feed(raw[:cut]) == ""
    assert framer.pending > 0
    assert framer.feed(raw[cut:]) == text


def test_split_inside_a_length_prefix_and_one_byte_at_a_time():
    text = encode("blob", "1", "x" * 1234) + encode("sync", 99)
    framer = Framer()
    out = "".join(framer.feed(bytes([b])) for b in text.encode())
    assert out == text


def test_only_complete_instructions_come_out():
    framer = Framer()
    assert framer.feed("4.sync,2.12;4.sy") == "4.sync,2.12;"
    assert framer.feed("nc,1.5") == ""
    assert framer.feed(";") == "4.sync,1.5;"


def test_an_instruction_of_exactly_the_limit_passes_and_one_more_fails():
    def of_length(n):
        head = "3.img,"
        value_len = n - len(head) - 6        # "NNNN." + value + ";"
        return head + f"{value_len}." + "y" * value_len + ";"
    ok = of_length(MAX_INSTRUCTION_LENGTH)
    assert len(ok) == MAX_INSTRUCTION_LENGTH
    assert Framer().feed(ok) == ok
    too_long = of_length(MAX_INSTRUCTION_LENGTH + 1)
    with pytest.raises(ProtocolError, match="longer than 8192"):
        Framer().feed(too_long)


def test_a_declared_length_over_the_limit_fails_before_the_data_arrives():
    framer = Framer()
    with pytest.raises(ProtocolError, match="longer than 8192"):
        framer.feed(b"4.blob,99999.abc")
    # Nor does an endless value without a length past the limit sit in memory.
    framer = Framer()
    with pytest.raises(ProtocolError):
        framer.feed(b"4.blob,8000." + b"z" * 9000)


def test_128_elements_pass_and_129_fail():
    assert parse(Framer().feed(encode("x", *range(MAX_ELEMENTS - 1))))[0] == "x"
    with pytest.raises(ProtocolError, match="more than 128 elements"):
        Framer().feed(encode("x", *range(MAX_ELEMENTS)))


@pytest.mark.parametrize("bad, words", [
    (b"4x.sync;", "length prefix"),
    (b"four.sync;", "length prefix"),
    (b"4.sync:", "',' or ';'"),
    (b"4.sync,1.2;\xff\xfe", "invalid UTF-8"),
    (b"123456789.x", "length prefix"),
])
def test_malformed_input_is_refused_with_a_short_message(bad, words):
    with pytest.raises(ProtocolError, match=words) as e:
        Framer().feed(bad)
    assert len(str(e.value)) < 80


def test_error_messages_quote_little_of_the_data():
    secret = "S" * 500
    with pytest.raises(ProtocolError) as e:
        Framer().feed(("X" + secret).encode())
    assert secret not in str(e.value) and len(str(e.value)) < 80


def test_internal_instructions_are_those_with_an_empty_opcode():
    assert is_internal(encode("", "ping", 1700000000000))
    assert is_internal("0.;")
    assert not is_internal(encode("key", 65, 1))
    assert not is_internal(encode("clipboard", "0.,ping"))
    assert not is_internal("05.hello,1.x;")


def test_split_and_parse():
    text = encode("a", "1;2") + encode("", "ping", "5") + encode("b")
    raws = split(text)
    assert raws == [encode("a", "1;2"), encode("", "ping", "5"), encode("b")]
    assert [parse(r) for r in raws] == [["a", "1;2"], ["", "ping", "5"], ["b"]]
    for bad in ("4.sync", "4.sync,1.1;4.sync", "x.y;"):
        with pytest.raises(ProtocolError):
            split(bad)
    with pytest.raises(ProtocolError, match="more than one"):
        parse(encode("a") + encode("b"))


# -- hostile input: whatever arrives, the codec answers with text or a ProtocolError --------

def mutate(raw: bytes, data) -> bytes:
    """A few random edits of a valid stream: the inputs most likely to confuse a parser."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(out)))
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "digits", "dup"]))
        if kind == "flip" and where < len(out):
            out[where] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            out[where:where] = data.draw(st.sampled_from([b";", b",", b".", b"0.", b"\xff",
                                                          b"\xe2\x82", b"9", "😀".encode()]))
        elif kind == "delete":
            del out[where:where + data.draw(st.integers(1, 8))]
        elif kind == "digits":
            out[where:where] = str(data.draw(st.integers(0, 10**7))).encode()
        elif kind == "dup":
            out[where:where] = out[where:where + data.draw(st.integers(1, 64))]
    return bytes(out)


def feed_all(framer: Framer, chunks) -> str:
    return "".join(framer.feed(chunk) for chunk in chunks)


def cut(raw, data):
    points = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    return [raw[a:b] for a, b in zip([0] + points, points + [len(raw)])]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.data())
def test_any_bytes_give_whole_instructions_or_a_protocol_error_and_memory_stays_bounded(
        garbage, data):
    framer = Framer()
    try:
        for chunk in cut(garbage, data):
            out = framer.feed(chunk)
            assert out == "" or split(out)             # only whole, valid instructions
            assert framer.pending < MAX_INSTRUCTION_LENGTH + 4
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=8), st.data())
def test_mutated_valid_streams_parse_the_same_however_split_or_fail_as_protocol_errors(
        items, data):
    raw = mutate("".join(encode(*i) for i in items).encode(), data)
    outcomes = []
    for chunks in ([raw], cut(raw, data)):
        try:
            outcomes.append(feed_all(Framer(), chunks))
        except ProtocolError:
            outcomes.append(ProtocolError)
    assert outcomes[0] == outcomes[1]                 # no split changes the verdict


# Protocol punctuation often, any code point otherwise (lone surrogates included).
hostile_text = st.text(st.one_of(st.sampled_from("0123456789.,;"),
                                 st.characters(blacklist_categories=())), max_size=300)


@settings(max_examples=300, deadline=None)
@given(hostile_text, st.data())
def test_any_text_message_through_the_tunnel_input_is_forwarded_whole_or_refused(text, data):
    from guacbridge.web.tunnel_input import from_browser
    framer = Framer()
    try:
        for chunk in cut(text, data):
            forward, replies = from_browser(framer, chunk)
            assert not any(is_internal(r) for r in split(forward.decode()))
            assert all(parse(r)[1] == "ping" for r in split(replies))
            assert framer.pending < MAX_INSTRUCTION_LENGTH
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=8), st.data())
def test_the_tunnel_forwards_every_ordinary_instruction_and_answers_every_ping(items, data):
    from guacbridge.web.tunnel_input import from_browser
    pings = [encode("", "ping", n) for n in range(3)]
    ordinary = [encode(*i) if i[0] != "" else encode("x", *i) for i in items]
    stream = "".join(sum(zip(ordinary, pings * len(ordinary)), ()))
    framer = Framer()
    forward, replies = b"", ""
    for chunk in cut(stream, data):
        f, r = from_browser(framer, chunk)
        forward, replies = forward + f, replies + r
    assert forward.decode() == "".join(ordinary)
    assert replies == "".join((pings * len(ordinary))[:len(ordinary)])


@pytest.mark.parametrize("over", [
    "4.blob,1.0,9000." + "x" * 10,                    # declared length past the limit
    "4.blob" + ",1.x" * 200,                          # more elements than guacd takes
    "4.blob,123456.x",                                # a length prefix of six digits
    "4.blob," + ",".join(["100." + "y" * 100] * 90),  # growing past the limit, unfinished
])
def test_over_a_limit_is_a_protocol_limit_and_malformed_is_not(over):
    from guacbridge.protocol import ProtocolLimit
    with pytest.raises(ProtocolLimit):
        Framer().feed(over)
    for bad in ("4.blob;x", "x.y;", "4.sync,1.1:", "٤.sync;"):
        with pytest.raises(ProtocolError) as e:
            Framer().feed(bad)
        assert not isinstance(e.value, ProtocolLimit)


def test_a_lone_surrogate_is_refused_before_it_could_be_encoded_for_guacd():
    from guacbridge.web.tunnel_input import from_browser
    with pytest.raises(ProtocolError, match="not valid Unicode"):
        from_browser(Framer(), encode("clipboard", "\ud800"))


# -- the C scan (guacbridge/_framescan.c) against the Python loop it stands in for -----------

def outcome(chunks, in_c: bool):
    """What a Framer makes of *chunks*: its outputs and held-back text, or the error."""
    from guacbridge import protocol
    saved = protocol._scan_in_c
    if not in_c:
        protocol._scan_in_c = None
    try:
        framer, outs = Framer(max_length=300, max_elements=6), []
        try:
            for chunk in chunks:
                outs.append(framer.feed(chunk))
        except ProtocolError as e:
            return outs, type(e), str(e)
        return outs, framer.pending, framer._pos, framer._start, framer._count
    finally:
        protocol._scan_in_c = saved


def test_the_relay_runs_on_the_c_scan_where_ci_runs():
    from guacbridge import protocol
    if protocol._scan_in_c is None and os.environ.get("CI") != "true":
        pytest.skip("guacbridge._framescan not built here (no compiler): the Python loop runs")
    assert protocol._scan_in_c is not None, "guacbridge._framescan was not built"


# Around the limits the test Framer has (300 code points, 6 elements) and over them.
near_limits = st.lists(st.lists(st.text(max_size=90), min_size=1, max_size=8), min_size=1,
                       max_size=6).map(lambda items: "".join(encode(*i) for i in items).encode())


@settings(max_examples=500, deadline=None)
@given(st.one_of(near_limits, st.binary(max_size=400)), st.data())
def test_the_c_scan_gives_what_the_python_loop_gives_outputs_state_and_errors(raw, data):
    from guacbridge import protocol
    if protocol._scan_in_c is None:
        pytest.skip("guacbridge._framescan not built here")
    if data.draw(st.booleans()):
        raw = mutate(raw, data)
    chunks = cut(raw, data)
    assert outcome(chunks, in_c=True) == outcome(chunks, in_c=False)
