"""``guacbridge serve``, changed to measure the difference: ``--python-scan`` (Framer.feed
without guacbridge/_framescan.c, as a build without a compiler runs).

Run: python bench/variant_serve.py [--python-scan]   (configured by GUACBRIDGE_*)
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    options = sys.argv[1:]
    if "--python-scan" in options:
        from guacbridge import protocol
        protocol._scan_in_c = None
    from guacbridge import cli
    sys.argv = ["guacbridge", "serve"]
    cli.main()
