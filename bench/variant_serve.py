"""``guacbridge serve`` with what the profile says it would take to go faster, to measure
it: ``--cscan`` (bench/cscan, a C boundary scanner under Framer.feed), ``--uvloop``.

Run: python bench/variant_serve.py [--cscan] [--uvloop]   (configured by GUACBRIDGE_*)
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    options = sys.argv[1:]
    if "--cscan" in options:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "cscan"))
        import accel
        accel.install()
    if "--uvloop" in options:
        import uvloop
        uvloop.install()
    from guacbridge import cli
    sys.argv = ["guacbridge", "serve"]
    cli.main()
