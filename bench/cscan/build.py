"""Build the prototype C scanner in place (bench/cscan/_guacscan*.so); needs gcc and the
Python headers (deploy/install.sh installs both)."""
import pathlib
import sys

from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent

if __name__ == "__main__":
    import os
    os.chdir(HERE)                      # --inplace puts the module in the current directory
    sys.argv[1:] = ["build_ext", "--inplace", "--build-temp", str(HERE / "build")]
    setup(name="guacscan", script_args=sys.argv[1:],
          ext_modules=[Extension("_guacscan", [str(HERE / "_guacscan.c")],
                                 extra_compile_args=["-O2"])])
