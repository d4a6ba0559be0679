"""A mutational fuzz run of the codec and the tunnel's browser input; prints one JSON object.

Each input is a mutation of a valid browser stream (keys, mouse, sync, clipboard blobs,
pings, non-ASCII text), well-formed instructions with odd values around guacd's limits, or
plain random bytes, cut into random chunks, and goes through

- ``protocol.Framer`` fed bytes (as from guacd), once whole and once in chunks: the verdict
  (the text returned, or a ProtocolError) must not depend on the cuts, nor (with the C scan
  built) on whether the C scan or the Python loop alone runs, down to the error's message;
- ``web.tunnel.from_browser`` fed the same input as text messages (as Tornado hands them
  over; sometimes with lone surrogates for bytes that are not UTF-8): what it forwards must
  re-parse, hold no internal instruction and agree with the Framer's verdict (exactly the
  expected instructions for a generated input), and its Framer must hold under one
  instruction.

Any other exception, an input slower than ``--slow`` seconds, or resident memory growing by
more than ``--rss-mb`` after the warm-up is a failure: exit status 1, the input saved to
``fuzz-failure.bin`` in the temporary directory.
Not a test: pytest does not collect bench/. Run it niced on a shared machine:

    nice -n 10 .venv/bin/python bench/fuzz_codec.py [--inputs 1000000] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guacbridge import protocol  # noqa: E402
from guacbridge.protocol import Framer, ProtocolError, encode  # noqa: E402
from guacbridge.web.tunnel import from_browser  # noqa: E402

PAGE = resource.getpagesize()


def seeds(rng: random.Random) -> list[bytes]:
    """Valid streams like a browser's, some near guacd's limits."""
    out = []
    for n in range(200):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            kind = rng.randrange(8)
            if kind == 0:
                parts.append(encode("key", rng.randrange(0x10000), rng.randrange(2)))
            elif kind == 1:
                parts.append(encode("mouse", rng.randrange(4096), rng.randrange(4096),
                                    rng.randrange(8)))
            elif kind == 2:
                parts.append(encode("sync", 1700000000000 + n))
            elif kind == 3:
                parts.append(encode("", "ping", 1700000000000 + n))
            elif kind == 4:
                parts.append(encode("blob", rng.randrange(8),
                                    rng.randbytes(rng.randrange(1, 6000)).hex()[:8000]))
            elif kind == 5:
                parts.append(encode("clipboard", rng.randrange(8), "text/plain"))
            elif kind == 6:
                parts.append(encode("name", "Zoë 😀 " + "€" * rng.randrange(50)))
            else:
                parts.append(encode("x", *range(rng.randrange(1, 128))))
        out.append("".join(parts).encode())
    return out


TOKENS = [b";", b",", b".", b"0.", b"0.,", b"4.ping,", b"\xff", b"\xe2\x82", b"\xed\xa0\x80",
          b"99999.", b"8192.", b"-1.", b"\x00", "😀".encode(), b"1.", b"10.disconnect;"]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        where = rng.randrange(len(out) + 1)
        kind = rng.randrange(9)
        if kind == 0 and out:
            out[min(where, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            out[where:where] = rng.choice(TOKENS)
        elif kind == 2:
            del out[where:where + rng.randrange(1, 64)]
        elif kind == 3:
            out[where:where] = str(rng.randrange(10 ** rng.randrange(1, 9))).encode()
        elif kind == 4:
            out[where:where] = out[where:where + rng.randrange(1, 512)] * rng.randrange(1, 20)
        elif kind == 5:
            other = rng.choice(pool)
            start = rng.randrange(len(other))
            out[where:where] = other[start:start + rng.randrange(1, 2000)]
        elif kind == 6:
            del out[where:]
        elif kind == 7:
            out[where:where] = rng.randbytes(rng.randrange(1, 32))
        else:                               # a length prefix off by a little
            dot = out.find(b".", where)
            if dot > 0 and out[dot - 1:dot].isdigit():
                out[dot - 1] = ord(str(rng.randrange(10)))
    return bytes(out)


ALPHABET = "azAZ09.,;é€😀\x00 "
TEXT = "".join(random.Random(0).choices(ALPHABET, k=30000))   # values are slices of it


def generated(rng: random.Random) -> tuple[bytes, bytes | None]:
    """Well-formed instructions with odd values (near the limits too), encoded correctly;
    with what the tunnel must forward when every one is within guacd's limits."""
    instructions, within = [], True
    for _ in range(rng.randrange(1, 6)):
        opcode = rng.choice(["", "key", "blob", "x", "ping", "0"])
        count = rng.choice([0, 1, 2, 5, 126, 127, 130])
        size = rng.choice([0, 1, 10, 60, 70] if count > 100 else [0, 1, 10, 100, 2000, 8200])
        values = []
        for _ in range(count):
            length, start = rng.randrange(size + 1), rng.randrange(len(TEXT) - 8200)
            values.append(TEXT[start:start + length])
        if opcode == "" and rng.random() < 0.5:
            values = ["ping", str(rng.randrange(10**13))]
        text = encode(opcode, *values)
        within = within and len(text) <= protocol.MAX_INSTRUCTION_LENGTH \
            and len(values) < protocol.MAX_ELEMENTS
        instructions.append(text)
    forward = "".join(i for i in instructions if not protocol.is_internal(i))
    return "".join(instructions).encode(), forward.encode() if within else None


def cuts(rng: random.Random, n: int) -> list[tuple[int, int]]:
    points = sorted(rng.randrange(n + 1) for _ in range(rng.randrange(0, 6)))
    return list(zip([0] + points, points + [n]))


def framer_verdict(chunks, why: bool = False) -> str | type | tuple:
    """The text a Framer returns for *chunks*, or ProtocolError (with its message, *why*)."""
    framer = Framer()
    out = []
    try:
        for chunk in chunks:
            out.append(framer.feed(chunk))
            if framer.pending >= protocol.MAX_INSTRUCTION_LENGTH + 4:
                raise AssertionError(f"Framer holds {framer.pending} code points")
    except ProtocolError as e:
        return (ProtocolError, str(e)) if why else ProtocolError
    return "".join(out)


def in_python(fn, *args):
    """*fn* with Framer.feed's Python loop alone, as a build without the C scan runs."""
    saved, protocol._scan_in_c = protocol._scan_in_c, None
    try:
        return fn(*args)
    finally:
        protocol._scan_in_c = saved


def tunnel_input(messages) -> bytes | None:
    """What the tunnel would forward, or None when it ends the tunnel (ProtocolError)."""
    framer = Framer()
    sent = []
    try:
        for message in messages:
            forward, replies = from_browser(framer, message)
            sent.append(forward)
            if forward:
                raws = protocol.split(forward.decode())
                if any(protocol.is_internal(r) for r in raws):
                    raise AssertionError("an internal instruction would reach guacd")
                for raw in raws:
                    protocol.parse(raw)
            for raw in protocol.split(replies):
                if protocol.parse(raw)[1:2] != ["ping"]:
                    raise AssertionError("a reply that is not a ping echo")
            if framer.pending >= protocol.MAX_INSTRUCTION_LENGTH:
                raise AssertionError(f"Framer holds {framer.pending} code points")
    except ProtocolError:
        return None
    return b"".join(sent)


def one(rng: random.Random, data: bytes, expected: bytes | None = None,
        generated_input: bool = False) -> str | type:
    """Both paths for one input; the Framer's verdict on it.

    The two paths must agree: for valid UTF-8 the tunnel forwards exactly the Framer's
    instructions minus the internal ones, or both refuse. A generated input must be
    forwarded exactly as *expected*, or refused when that is None (a limit is broken)."""
    pieces = [data[a:b] for a, b in cuts(rng, len(data))]
    whole, split = framer_verdict([data]), framer_verdict(pieces)
    if whole != split:
        raise AssertionError("the verdict depends on how the bytes were cut")
    if protocol._scan_in_c is not None and \
            framer_verdict(pieces, True) != in_python(framer_verdict, pieces, True):
        raise AssertionError("the C scan and the Python loop disagree")
    try:
        data.decode()
        errors = "surrogateescape" if rng.random() < 0.1 else "strict"
    except UnicodeDecodeError:
        errors = "surrogateescape" if rng.random() < 0.5 else "replace"   # lone surrogates
    text = data.decode("utf-8", errors)
    forwarded = tunnel_input([text[a:b] for a, b in cuts(rng, len(text))])
    if errors == "strict":
        agreed = (forwarded is None if whole is ProtocolError else forwarded == "".join(
            r for r in protocol.split(whole) if not protocol.is_internal(r)).encode())
        if not agreed:
            raise AssertionError("the tunnel and the Framer disagree on valid UTF-8")
    if generated_input and forwarded != expected:
        raise AssertionError(f"a generated input was forwarded as {str(forwarded)[:80]}")
    return whole


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def failed(why: str, index: int, seed: int, data: bytes) -> int:
    path = pathlib.Path(tempfile.gettempdir()) / "fuzz-failure.bin"
    path.write_bytes(data)
    print(json.dumps({"failed": why, "input": index, "seed": seed, "saved": str(path)}),
          file=sys.stderr)
    return 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow", type=float, default=1.0, help="seconds one input may take")
    p.add_argument("--rss-mb", type=float, default=50.0, help="allowed growth after warm-up")
    args = p.parse_args()
    rng = random.Random(args.seed)
    pool = seeds(rng)
    counts = {"inputs": 0, "random_bytes": 0, "generated": 0, "mutated": 0,
              "framer_refused": 0, "framer_passed": 0}
    warmup = min(20_000, args.inputs // 10)
    rss_start = rss_peak = rss_mb()
    slowest, slowest_input = 0.0, None
    started = time.perf_counter()
    for i in range(args.inputs):
        if i == warmup:
            rss_start = rss_peak = rss_mb()
        expected, made = None, False
        roll = rng.random()
        if roll < 0.05:
            data = rng.randbytes(rng.randrange(1, 256))
            counts["random_bytes"] += 1
        elif roll < 0.25:
            data, expected = generated(rng)
            made = True
            counts["generated"] += 1
        else:
            data = mutate(rng, rng.choice(pool), pool)
            counts["mutated"] += 1
            if data and rng.random() < 0.02:   # mutations of mutations, now and then
                pool[rng.randrange(len(pool))] = data[:20000]
        state = rng.getstate()               # to cut the slowest input the same way again
        t0 = time.perf_counter()
        try:
            verdict = one(rng, data, expected, made)
        except Exception as e:               # ProtocolError never gets here
            return failed(f"{type(e).__name__}: {e}", i, args.seed, data)
        took = time.perf_counter() - t0
        if took > slowest:
            slowest, slowest_input = took, (data, expected, made, state)
        if took > args.slow:
            return failed(f"one input took {took:.3f} s", i, args.seed, data)
        counts["inputs"] += 1
        counts["framer_refused" if verdict is ProtocolError else "framer_passed"] += 1
        if i % 10_000 == 0:
            rss_peak = max(rss_peak, rss_mb())
            if i > warmup and rss_peak - rss_start > args.rss_mb:
                return failed(f"RSS grew {rss_peak - rss_start:.1f} MB", i, args.seed, data)
    elapsed = time.perf_counter() - started
    rss_peak = max(rss_peak, rss_mb())
    # The slowest input again, alone: a long pause while the machine was busy is not the
    # codec's doing, a slow input would be slow again.
    retimed = []
    if slowest_input is not None:
        data, expected, made, state = slowest_input
        for _ in range(3):
            again = random.Random()
            again.setstate(state)
            t0 = time.perf_counter()
            one(again, data, expected, made)
            retimed.append(time.perf_counter() - t0)
    print(json.dumps({
        **counts, "seed": args.seed, "seconds": round(elapsed, 1),
        "inputs_per_s": round(counts["inputs"] / elapsed),
        "slowest_input_ms": round(slowest * 1000, 2),
        "slowest_input_bytes": len(slowest_input[0]) if slowest_input else 0,
        "slowest_input_again_ms": round(min(retimed, default=0) * 1000, 2),
        "rss_mb_after_warmup": round(rss_start, 1), "rss_mb_peak": round(rss_peak, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
