"""`python -m syncd`: the same as the `syncd` command."""

from syncd.cli import main

if __name__ == "__main__":  # run, not imported
    main()
